import { afterAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync, unlinkSync, renameSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EvidenceChain, exportEvidence, verifyPath, pruneEvidence, readChainHead, evidenceFileName, type ChainedEvidence } from '../../src/evidence/index.js';
import { openStateDb } from '../../src/state/index.js';
import { generateKeyFiles, loadSecretKeyFile, loadPublicKeyFile, envelopeHash, EnvelopeSchema } from '../../src/crypto/index.js';
import { tempDir } from '../helpers/tmp.js';
import { forgedEnvelope, sampleDraft } from '../helpers/evidence.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const keys = generateKeyFiles('appliance-1', join(tmp.path, 'keys'));
const otherKeys = generateKeyFiles('intruder', join(tmp.path, 'keys'));
const secret = loadSecretKeyFile(keys.secretPath);
const pub = loadPublicKeyFile(keys.publicPath);

/** Records what would be queued; the queue itself is tested in test/queue. */
function recordingSink() {
  const rows: { bundleId: string; body: string; destinations: readonly string[] }[] = [];
  return { rows, enqueue: (bundleId: string, body: string, destinations: readonly string[]) => void rows.push({ bundleId, body, destinations }) };
}

function freshStore(name: string, n: number) {
  const dir = join(tmp.path, name);
  mkdirSync(dir, { recursive: true });
  const db = openStateDb(join(dir, 'state.db'));
  const sink = recordingSink();
  const chain = new EvidenceChain(db, secret, sink);
  const out = chain.append(
    Array.from({ length: n }, () => sampleDraft()),
    ['mcp'],
    Date.now(),
  );
  const evDir = join(dir, 'evidence');
  exportEvidence(db, evDir);
  return { db, sink, out, evDir };
}

describe('evidence chain', () => {
  it('assigns consecutive seq and links each bundle to the hash of the previous envelope', () => {
    const { out, sink, db } = freshStore('link', 5);
    expect(out.map((o) => o.bundle.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(out[0]!.bundle.prev_hash).toBeNull();
    for (let i = 1; i < out.length; i++) expect(out[i]!.bundle.prev_hash).toBe(out[i - 1]!.envelopeHash);
    expect(sink.rows.map((r) => r.body)).toEqual(out.map((o) => o.envelope));
    expect(readChainHead(db, 'appliance-1')).toEqual({ seq: 5, headHash: out[4]!.envelopeHash });
    expect(envelopeHash(EnvelopeSchema.parse(JSON.parse(out[4]!.envelope)))).toBe(out[4]!.envelopeHash);
  });

  it('continues the chain across a reopen of the state database', () => {
    const dir = join(tmp.path, 'reopen');
    mkdirSync(dir);
    let db = openStateDb(join(dir, 'state.db'));
    new EvidenceChain(db, secret, recordingSink()).append([sampleDraft(), sampleDraft()], ['mcp'], Date.now());
    db.close();
    db = openStateDb(join(dir, 'state.db'));
    const [third] = new EvidenceChain(db, secret, recordingSink()).append([sampleDraft()], ['mcp'], Date.now());
    expect(third!.bundle.seq).toBe(3);
    exportEvidence(db, join(dir, 'evidence'));
    expect(verifyPath(join(dir, 'evidence'), [pub]).ok).toBe(true);
  });

  it('stores nothing and queues nothing when a draft in the group is invalid', () => {
    const dir = join(tmp.path, 'atomic');
    mkdirSync(dir);
    const db = openStateDb(join(dir, 'state.db'));
    const sink = recordingSink();
    const chain = new EvidenceChain(db, secret, sink);
    expect(() => chain.append([sampleDraft(), sampleDraft({ bundle_id: 'not-a-uuid' })], ['mcp'], Date.now())).toThrow(/bundle schema/);
    expect((db.prepare('SELECT COUNT(*) n FROM evidence').get() as { n: number }).n).toBe(0);
    expect(readChainHead(db, 'appliance-1').seq).toBe(0);
  });
});

describe('verify', () => {
  it('accepts an intact directory and a single envelope', () => {
    const { evDir } = freshStore('intact', 4);
    const r = verifyPath(evDir, [pub]);
    expect(r.ok).toBe(true);
    expect(r.hosts).toEqual([expect.objectContaining({ hostId: 'appliance-1', first: 1, last: 4, count: 4 })]);
    const one = join(evDir, readdirSync(evDir)[0]!);
    expect(verifyPath(one, [pub]).ok).toBe(true);
  });

  it('names a deleted bundle as a gap', () => {
    const { evDir } = freshStore('gap', 5);
    const files = readdirSync(evDir).sort();
    unlinkSync(join(evDir, files[2]!));
    const r = verifyPath(evDir, [pub]);
    expect(r.ok).toBe(false);
    expect(r.findings).toEqual([expect.objectContaining({ kind: 'gap', message: expect.stringContaining('1 bundle(s) missing between seq 2 and 4') })]);
  });

  it('finds a tampered payload by its signature', () => {
    const { evDir } = freshStore('tamper', 3);
    const f = join(evDir, readdirSync(evDir).sort()[1]!);
    writeFileSync(
      f,
      forgedEnvelope(f, (bundle) => ({ ...bundle, outcome: 'compliant', pre_state: { forged: true } })),
    );
    const r = verifyPath(evDir, [pub]);
    expect(r.ok).toBe(false);
    // Named once: the hole the discarded bundle leaves is its own seq, not a second problem.
    expect(r.findings.map((x) => x.kind)).toEqual(['bad_signature']);
  });

  it('still names a gap next to a tampered bundle when another bundle is missing too', () => {
    const { evDir } = freshStore('tamper-and-delete', 4);
    const files = readdirSync(evDir).sort();
    unlinkSync(join(evDir, files[1]!));
    const f = join(evDir, files[2]!);
    writeFileSync(
      f,
      forgedEnvelope(f, (bundle) => ({ ...bundle, outcome: 'healed' })),
    );
    const r = verifyPath(evDir, [pub]);
    expect(r.findings.map((x) => x.kind).sort()).toEqual(['bad_signature', 'gap']);
    expect(r.findings.find((x) => x.kind === 'gap')!.message).toBe('host appliance-1: 2 bundle(s) missing between seq 1 and 4 (deleted or withheld)');
  });

  it('finds reordered files and a bundle replaced by a validly signed one from another chain', () => {
    const { evDir } = freshStore('reorder', 4);
    const files = readdirSync(evDir).sort();
    const a = join(evDir, files[1]!);
    const b = join(evDir, files[2]!);
    const tmpName = join(evDir, 'swap');
    renameSync(a, tmpName);
    renameSync(b, a);
    renameSync(tmpName, b);
    const r = verifyPath(evDir, [pub]);
    expect(r.ok).toBe(false);
    expect(r.findings.filter((x) => x.kind === 'misnamed')).toHaveLength(2);

    const other = freshStore('fork', 4);
    const target = join(other.evDir, readdirSync(other.evDir).sort()[2]!);
    const replacement = freshStore('fork-src', 4);
    writeFileSync(target, readFileSync(join(replacement.evDir, readdirSync(replacement.evDir).sort()[2]!)));
    const r2 = verifyPath(other.evDir, [pub]);
    expect(r2.ok).toBe(false);
    expect(r2.findings.map((x) => x.kind)).toContain('broken_link');
  });

  it('rejects envelopes signed by an untrusted key', () => {
    const { evDir } = freshStore('wrongkey', 2);
    const r = verifyPath(evDir, [loadPublicKeyFile(otherKeys.publicPath)]);
    expect(r.ok).toBe(false);
    expect(r.findings.every((f) => f.kind === 'unknown_key')).toBe(true);
  });

  it('names a file that is not JSON without quoting it (an auditor may point verify at a key by mistake)', () => {
    const { evDir } = freshStore('not-json', 1);
    const keyText = readFileSync(keys.secretPath, 'utf8');
    writeFileSync(join(evDir, '0000000002-secret.json'), keyText);
    const r = verifyPath(evDir, [pub]);
    expect(r.findings).toEqual([{ kind: 'unreadable', file: join(evDir, '0000000002-secret.json'), message: '0000000002-secret.json: not valid JSON' }]);
    expect(verifyPath(keys.secretPath, [pub]).findings.map((f) => f.message)).toEqual(['appliance-1.key: not valid JSON']);
  });
});

describe('pruning', () => {
  it('keeps the newest N, anything younger than the minimum age, and anything undelivered', () => {
    const dir = join(tmp.path, 'prune');
    mkdirSync(dir);
    const db = openStateDb(join(dir, 'state.db'));
    const evDir = join(dir, 'evidence');
    const day = 86_400_000;
    const now = Date.UTC(2026, 10, 23);
    const outbox: { bundleId: string; state: string }[] = [];
    const sink = {
      enqueue: (bundleId: string, body: string, _d: readonly string[], at: number) => {
        db.prepare("INSERT INTO outbox (destination, bundle_id, body, state, created_at, next_attempt_at) VALUES ('mcp', ?, ?, 'pending', ?, ?)").run(bundleId, body, at, at);
        outbox.push({ bundleId, state: 'pending' });
      },
    };
    const chain = new EvidenceChain(db, secret, sink);
    const old = chain.append(
      Array.from({ length: 6 }, () => sampleDraft()),
      ['mcp'],
      now - 100 * day,
    );
    const young = chain.append(
      Array.from({ length: 3 }, () => sampleDraft()),
      ['mcp'],
      now - 10 * day,
    );
    exportEvidence(db, evDir);
    // Bundles 1-5 were delivered; bundle 6 never was.
    for (const o of old.slice(0, 5)) db.prepare("UPDATE outbox SET state = 'done' WHERE bundle_id = ?").run(o.bundle.bundle_id);
    // Only bundles 1-5 have a countersigned receipt.
    const acknowledged = new Set(old.slice(0, 5).map((o) => o.bundle.bundle_id));
    const checkpoints: ChainedEvidence[] = [];
    const report = pruneEvidence(db, evDir, { keepLast: 2, minAgeDays: 90 }, now, {
      acknowledged: (b) => acknowledged.has(b.bundleId),
      checkpoint: (c) => checkpoints.push(...chain.append([sampleDraft({ check: 'chain', pre_state: { checkpoint: { ...c } } })], ['mcp'], now)),
    });
    expect(report).toMatchObject({ deleted: 5, keptUnacknowledged: 1, remaining: 5 });
    expect(report.checkpoints).toEqual([
      {
        host_id: 'appliance-1',
        first_pruned_seq: 1,
        first_pruned_prev_hash: null,
        last_pruned_seq: 5,
        last_pruned_hash: old[4]!.envelopeHash,
        last_pruned_bundle_id: old[4]!.bundle.bundle_id,
        pruned_count: 5,
      },
    ]);
    const left = readdirSync(evDir).sort();
    expect(left).toEqual([...old.slice(5), ...young, ...checkpoints].map((o) => evidenceFileName(o.bundle.seq, o.bundle.bundle_id)));
    // What remains still verifies: the first remaining bundle points at a pruned predecessor the checkpoint names.
    expect(verifyPath(evDir, [pub]).findings).toEqual([]);
  });
});
