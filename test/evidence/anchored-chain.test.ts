import { afterAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { EvidenceChain, exportEvidence, pruneEvidence, signReceipt, verifyPath, type ChainedEvidence } from '../../src/evidence/index.js';
import { openStateDb } from '../../src/state/index.js';
import { canonicalEnvelope, generateKeyFiles, loadPublicKeyFile, loadSecretKeyFile, publicKeyOf, randomSeed } from '../../src/crypto/index.js';
import { tempDir } from '../helpers/tmp.js';
import { sampleDraft } from '../helpers/evidence.js';

// The chain's two ends: a checkpoint chained by prune anchors the start (also while a prune is
// interrupted between its deletes), and countersigned receipts pin the newest end.
const tmp = tempDir();
afterAll(() => tmp.cleanup());
const keys = generateKeyFiles('appliance-1', join(tmp.path, 'keys'));
const mcpKeys = generateKeyFiles('mcp-receipts', join(tmp.path, 'keys'));
const pub = loadPublicKeyFile(keys.publicPath);
const mcpPub = loadPublicKeyFile(mcpKeys.publicPath);
const mcpSecret = loadSecretKeyFile(mcpKeys.secretPath);

function receiptFor(c: ChainedEvidence, overrides: Record<string, unknown> = {}, key = mcpSecret): string {
  const b = c.bundle;
  return canonicalEnvelope(
    signReceipt(
      {
        receipt_id: `r-${b.seq}`,
        bundle_id: b.bundle_id,
        envelope_hash: c.envelopeHash,
        site_id: b.site_id,
        host_id: b.host_id,
        seq: b.seq,
        received_at: '2026-11-23T12:00:00Z',
        ...overrides,
      },
      key,
    ),
  );
}

describe('anchored chain', () => {
  const dir = join(tmp.path, 'store');
  mkdirSync(dir);
  const db = openStateDb(join(dir, 'state.db'));
  const evDir = join(dir, 'evidence');
  const keep = join(dir, 'kept');
  mkdirSync(keep);
  const chain = new EvidenceChain(db, loadSecretKeyFile(keys.secretPath), { enqueue: () => undefined });
  const now = Date.UTC(2026, 10, 23);
  const bundles = chain.append(
    Array.from({ length: 8 }, () => sampleDraft()),
    ['mcp'],
    now - 100 * 86_400_000,
  );
  exportEvidence(db, evDir);
  for (const f of readdirSync(evDir)) copyFileSync(join(evDir, f), join(keep, f));

  it('a prune leaves a directory that starts where its checkpoint says, also when interrupted among its deletes', () => {
    const report = pruneEvidence(db, evDir, { keepLast: 3, minAgeDays: 90 }, now, {
      acknowledged: (b) => b.seq <= 5,
      checkpoint: (c) => void chain.append([sampleDraft({ check: 'chain', pre_state: { checkpoint: { ...c } } })], ['mcp'], now),
    });
    expect(report).toMatchObject({ deleted: 5, keptUnacknowledged: 0 });
    expect(verifyPath(evDir, [pub]).findings).toEqual([]);
    // Files 4 and 5 left behind by a prune killed after its transaction: still anchored.
    const files = readdirSync(keep).sort();
    for (const f of files.slice(3, 5)) copyFileSync(join(keep, f), join(evDir, f));
    expect(verifyPath(evDir, [pub]).findings).toEqual([]);
    for (const f of files.slice(3, 5)) unlinkSync(join(evDir, f));
  });

  it('deleting the first bundle after the checkpoint range is named as truncation at the start', () => {
    const first = readdirSync(evDir).sort()[0]!;
    copyFileSync(join(evDir, first), join(keep, `again-${first}`));
    unlinkSync(join(evDir, first));
    const r = verifyPath(evDir, [pub]);
    expect(r.findings.map((f) => [f.kind, f.message])).toEqual([
      [
        'truncated_start',
        'host appliance-1: the chain starts at seq 7, but no checkpoint bundle accounts for seq 6: the oldest bundle(s) (seq 6 and before) were deleted or withheld',
      ],
    ]);
    copyFileSync(join(keep, `again-${first}`), join(evDir, first));
  });

  it('receipts: pruned ones count as such, a wrong hash is a mismatch, another key is a bad receipt', () => {
    const receipts = bundles.map((b) => receiptFor(b));
    const ok = verifyPath(evDir, [pub], { receipts: { source: 'receipts.jsonl', envelopes: receipts, mcpKeys: [mcpPub] } });
    expect(ok.findings).toEqual([]);
    expect(ok.receipts).toMatchObject({ checked: 8, acknowledged: 3, forPruned: 5, newest: { seq: 8 } });
    const seed = randomSeed();
    const rogue = { keyId: 'mcp-receipts', seed, publicKey: publicKeyOf(seed) };
    const bad = verifyPath(evDir, [pub], {
      receipts: {
        source: 'receipts.jsonl',
        envelopes: [receiptFor(bundles[6]!, { envelope_hash: bundles[5]!.envelopeHash }), receiptFor(bundles[7]!, {}, rogue)],
        mcpKeys: [mcpPub],
      },
    });
    expect(bad.findings.map((f) => f.kind)).toEqual(['receipt_mismatch', 'bad_receipt']);
    expect(bad.findings[0]!.message).toContain(`the MCP acknowledged bundle ${bundles[6]!.bundle.bundle_id} seq 7 with hash ${bundles[5]!.envelopeHash}`);
    expect(bad.findings[1]!.message).toMatch(/^receipts\.jsonl receipt 2: receipt is not countersigned by a pinned MCP receipt key \(bad_signature/);
  });
});
