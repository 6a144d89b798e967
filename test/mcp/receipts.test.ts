import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RECEIPT_PAYLOAD_TYPE, envelopeHash, verifyEnvelope } from '../../src/crypto/index.js';
import { generatePki, type Pki, startReferenceMcp, type ReceiptFault, type ReferenceMcp } from '../../testing/index.js';
import type { McpClient } from '../../src/mcp/index.js';
import type { DeliveryResult } from '../../src/queue/index.js';
import { tempDir } from '../helpers/tmp.js';
import { agentKey, bundleIdOf, clientFor, evidenceEnvelope } from './fixtures.js';

// Receipts over real mTLS: each names the bundle and the hash of the exact envelope sent, and is
// countersigned by the MCP's receipt key; anything else is a failed delivery, never an ack.
const tmp = tempDir('mcp-receipts-');
const key = agentKey('appliance-1');
let pki: Pki;
let mcp: ReferenceMcp;
let client: McpClient;
let seq = 1;
const next = () => evidenceEnvelope(key.secret, seq++);

beforeAll(async () => {
  pki = await generatePki(tmp.path, { clientCn: 'appliance-1' });
  mcp = await startReferenceMcp({ pki, agentKeys: [key.pub] });
  client = clientFor(pki, mcp.url, { receiptKeys: [mcp.receiptPublicKey] });
});
afterAll(async () => {
  await client.close();
  await mcp.stop();
  tmp.cleanup();
});

describe('countersigned receipts', () => {
  it('single and batch: the receipt names the bundle, seq, host and envelope hash, signed by the pinned MCP key', async () => {
    const env = next();
    const single = await client.postEvidence(env);
    const batchEnvs = [next(), next()];
    const batch = await client.postEvidenceBatch(batchEnvs);
    for (const [r, e] of [
      [single, env],
      [batch[0], batchEnvs[0]],
      [batch[1], batchEnvs[1]],
    ] as [DeliveryResult, typeof env][]) {
      expect(r.kind).toBe('ok');
      if (r.kind !== 'ok') continue;
      expect(r.receipt?.keyid).toBe('mcp-receipts');
      expect(r.receipt?.receipt).toMatchObject({ bundle_id: bundleIdOf(e), envelope_hash: envelopeHash(e), host_id: 'appliance-1', receipt_id: r.receiptId });
      // Independently: a DSSE envelope of the receipt type that verifies under the MCP key alone.
      expect(verifyEnvelope(JSON.parse(r.receipt!.envelope), RECEIPT_PAYLOAD_TYPE, [mcp.receiptPublicKey]).ok).toBe(true);
      expect(verifyEnvelope(JSON.parse(r.receipt!.envelope), RECEIPT_PAYLOAD_TYPE, [key.pub]).ok).toBe(false);
    }
  });

  const LIES: [ReceiptFault, RegExp][] = [
    ['other_bundle', /a receipt the agent refuses: receipt names another bundle than/],
    ['wrong_hash', /a receipt the agent refuses: receipt for bundle .* names another envelope hash than sha256:/],
    ['unsigned', /a receipt the agent refuses: receipt is not countersigned by a pinned MCP receipt key \(bad_signature/],
    ['wrong_key', /a receipt the agent refuses: receipt is not countersigned by a pinned MCP receipt key \(bad_signature/],
    ['receipt_id_only', /with no countersigned receipt$/],
  ];
  it.each(LIES)('%s: a retry marked as a refused receipt, single and batch', async (lie, message) => {
    mcp.setFault({ receipts: lie });
    try {
      const envs = [next(), next()];
      const results = [await client.postEvidence(envs[0]!), ...(await client.postEvidenceBatch(envs))];
      for (const r of results) {
        expect(r).toMatchObject({ kind: 'retry', badReceipt: true });
        expect(r.kind === 'retry' && r.error).toMatch(message);
      }
      // The MCP did store them: only its word was refused.
      expect(mcp.evidence().has(bundleIdOf(envs[1]!))).toBe(true);
    } finally {
      mcp.setFault(null);
    }
  });

  it('without pinned keys a receipt is still bound to the bundle and hash, and recorded as not countersigned', async () => {
    const unpinned = clientFor(pki, mcp.url);
    try {
      const ok = await unpinned.postEvidence(next());
      expect(ok.kind === 'ok' && ok.receipt?.keyid).toBeNull();
      mcp.setFault({ receipts: 'other_bundle' });
      expect(await unpinned.postEvidence(next())).toMatchObject({ kind: 'retry', badReceipt: true });
    } finally {
      mcp.setFault(null);
      await unpinned.close();
    }
  });
});

describe('an MCP whose batch endpoint answered 404', () => {
  it('is served by single posts for batchRetryAfterMs, then asked for batches again', async () => {
    let now = 1_000_000;
    const c = clientFor(pki, mcp.url, { receiptKeys: [mcp.receiptPublicKey], now: () => now, batchRetryAfterMs: 60_000 });
    try {
      mcp.setBatchEndpoint(false);
      const batches = () => mcp.stats().batchPosts;
      expect((await c.postEvidenceBatch([next(), next()])).map((r) => r.kind)).toEqual(['ok', 'ok']);
      mcp.setBatchEndpoint(true);
      const before = batches();
      now += 59_000;
      expect((await c.postEvidenceBatch([next(), next()])).map((r) => r.kind)).toEqual(['ok', 'ok']);
      expect(batches()).toBe(before);
      now += 1_000;
      expect((await c.postEvidenceBatch([next(), next()])).map((r) => r.kind)).toEqual(['ok', 'ok']);
      expect(batches()).toBe(before + 1);
    } finally {
      mcp.setBatchEndpoint(true);
      await c.close();
    }
  });
});
