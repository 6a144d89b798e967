import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORDER_PAYLOAD_TYPE, EVIDENCE_PAYLOAD_TYPE, signEnvelope, verifyEnvelope, type Envelope } from '../../src/crypto/index.js';
import { generatePki, type Pki, MAX_BATCH_ENVELOPES, startReferenceMcp, type ReferenceMcp } from '../../testing/index.js';
import type { McpClient } from '../../src/mcp/index.js';
import { tempDir } from '../helpers/tmp.js';
import { agentKey, bundle, bundleIdOf, clientFor, evidenceEnvelope } from './fixtures.js';

const tmp = tempDir('mcp-protocol-');
const key = agentKey('appliance-1');
let pki: Pki;
let mcp: ReferenceMcp;
let client: McpClient;

beforeAll(async () => {
  pki = await generatePki(tmp.path, { clientCn: 'appliance-1' });
  mcp = await startReferenceMcp({ pki, agentKeys: [key.pub] });
  client = clientFor(pki, mcp.url);
});

afterAll(async () => {
  await client.close();
  await mcp.stop();
  tmp.cleanup();
});

describe('orders over mTLS', () => {
  it('returns null when no order is queued (204), then the queued envelopes in FIFO order', async () => {
    expect(await client.nextOrder()).toEqual({ ok: true, envelope: null });
    const operator = agentKey('msp-ops');
    const first = signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from('{"n":1}'), operator.secret);
    const second = signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from('{"n":2}'), operator.secret);
    mcp.enqueueOrder(first);
    mcp.enqueueOrder(second);
    expect(await client.nextOrder()).toEqual({ ok: true, envelope: first });
    expect(await client.nextOrder()).toEqual({ ok: true, envelope: second });
    expect(await client.nextOrder()).toEqual({ ok: true, envelope: null });
    expect(mcp.stats().ordersServed).toBe(2);
  });

  it('hands the order over as untrusted JSON, verifiable by the caller', async () => {
    const operator = agentKey('msp-ops');
    mcp.enqueueOrder(signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from('{"type":"run_checks"}'), operator.secret));
    const r = await client.nextOrder();
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(verifyEnvelope(r.envelope, ORDER_PAYLOAD_TYPE, [operator.pub]).ok).toBe(true);
    expect(verifyEnvelope(r.envelope, ORDER_PAYLOAD_TYPE, [key.pub]).ok).toBe(false);
  });
});

describe('evidence over mTLS', () => {
  it('posts one envelope, gets a receipt, and the same receipt on a repeat', async () => {
    const env = evidenceEnvelope(key.secret, 1);
    const before = mcp.stats();
    const first = await client.postEvidence(env);
    expect(first.kind).toBe('ok');
    const again = await client.postEvidence(env);
    expect(again).toEqual(first);
    const stored = mcp.evidence().get(bundleIdOf(env));
    expect(stored?.envelope).toEqual(env);
    expect(first.kind === 'ok' && stored?.receiptId).toBe(first.kind === 'ok' ? first.receiptId : null);
    const after = mcp.stats();
    expect(after.unique - before.unique).toBe(1);
    expect(after.duplicates - before.duplicates).toBe(1);
  });

  it('rejects (4xx) with the server reason: bad signature, unknown key, wrong payload type, invalid bundle', async () => {
    const env = evidenceEnvelope(key.secret, 2);
    const tampered: Envelope = { ...env, payload: Buffer.from(JSON.stringify(bundle(2, { outcome: 'healed' }))).toString('base64') };
    expect(await client.postEvidence(tampered)).toEqual({ kind: 'reject', reason: 'HTTP 400: signature does not verify' });

    const stranger = agentKey('stranger');
    expect(await client.postEvidence(evidenceEnvelope(stranger.secret, 1))).toEqual({ kind: 'reject', reason: 'HTTP 400: no registered agent key named "stranger"' });

    const asOrder = signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from(JSON.stringify(bundle(3))), key.secret);
    expect(await client.postEvidence(asOrder)).toEqual({ kind: 'reject', reason: `HTTP 400: payloadType is not ${EVIDENCE_PAYLOAD_TYPE}` });

    const noSeq = signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify({ ...bundle(4), seq: 0 })), key.secret);
    const r = await client.postEvidence(noSeq);
    expect(r.kind).toBe('reject');
    expect(r.kind === 'reject' && r.reason).toMatch(/^HTTP 400: bundle seq: /);
  });

  it('rejects an envelope over the MCP body cap (413) and keeps working on the next request', async () => {
    const huge = signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify(bundle(6, { reason: 'x'.repeat(2 * 1024 * 1024) }))), key.secret);
    expect(await client.postEvidence(huge)).toEqual({ kind: 'reject', reason: 'HTTP 413: request body over 1048576 bytes' });
    expect((await client.postEvidence(evidenceEnvelope(key.secret, 7))).kind).toBe('ok');
  });

  it('rejects a different envelope reusing a stored bundle_id (409) instead of overwriting it', async () => {
    const original = bundle(5);
    const env = signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify(original)), key.secret);
    expect((await client.postEvidence(env)).kind).toBe('ok');
    const forged = signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify({ ...original, outcome: 'healed' })), key.secret);
    expect(await client.postEvidence(forged)).toEqual({ kind: 'reject', reason: `HTTP 409: bundle_id ${original.bundle_id} was already received with different content` });
    expect(mcp.evidence().get(original.bundle_id)?.envelope).toEqual(env);
  });

  it('posts a batch: one result per envelope in order, per-envelope rejections, duplicates get their first receipt', async () => {
    const a = evidenceEnvelope(key.secret, 10);
    const b = evidenceEnvelope(key.secret, 11);
    const first = await client.postEvidence(a);
    const bad: Envelope = { ...b, signatures: [{ keyid: 'appliance-1', sig: Buffer.alloc(64, 1).toString('base64') }] };
    const c = evidenceEnvelope(key.secret, 12);
    const results = await client.postEvidenceBatch([a, bad, b, c]);
    expect(results[0]).toEqual(first);
    expect(results[1]).toEqual({ kind: 'reject', reason: 'MCP refused: signature does not verify' });
    expect(results.slice(2).map((r) => r.kind)).toEqual(['ok', 'ok']);
    for (const [i, env] of [
      [2, b],
      [3, c],
    ] as const) {
      const r = results[i];
      expect(r?.kind === 'ok' && r.receiptId).toBe(mcp.evidence().get(bundleIdOf(env))?.receiptId);
    }
    expect(await client.postEvidenceBatch([])).toEqual([]);
  });

  it(`splits more than ${MAX_BATCH_ENVELOPES} envelopes into several batches and keeps the order`, async () => {
    const envs = Array.from({ length: 1201 }, (_, i) => evidenceEnvelope(key.secret, 100 + i));
    const before = mcp.stats().unique;
    const results = await client.postEvidenceBatch(envs);
    expect(results).toHaveLength(envs.length);
    expect(results.every((r) => r.kind === 'ok')).toBe(true);
    expect(mcp.stats().unique - before).toBe(envs.length);
    results.forEach((r, i) => expect(r.kind === 'ok' && r.receiptId).toBe(mcp.evidence().get(bundleIdOf(envs[i]!))?.receiptId));
  });
});

describe('mcpUrl with a path prefix', () => {
  it('keeps the prefix in every request and in failure messages', async () => {
    const c = clientFor(pki, `${mcp.url}/api/v1/`);
    try {
      expect(await c.nextOrder()).toEqual({
        ok: false,
        error: {
          code: 'http_status',
          status: 404,
          retryable: false,
          message: `MCP 127.0.0.1:${mcp.port} answered 404 to GET /api/v1/orders/next: no route for GET /api/v1/orders/next`,
        },
      });
      expect(await c.postEvidence(evidenceEnvelope(key.secret, 9000))).toEqual({ kind: 'reject', reason: 'HTTP 404: no route for POST /api/v1/evidence' });
    } finally {
      await c.close();
    }
  });
});

describe('connections', () => {
  it('keeps mTLS connections alive: 40 sequential requests, not 40 handshakes', async () => {
    const c = clientFor(pki, mcp.url);
    try {
      const before = mcp.stats().connections;
      for (let i = 0; i < 20; i++) {
        expect((await c.postEvidence(evidenceEnvelope(key.secret, 5000 + i))).kind).toBe('ok');
        expect((await c.nextOrder()).ok).toBe(true);
      }
      // undici may open a second connection while releasing the first; never one per request.
      expect(mcp.stats().connections - before).toBeLessThanOrEqual(2);
    } finally {
      await c.close();
    }
  });
});

describe('an MCP without the batch endpoint', () => {
  it('is served by single posts after its 404, with the same per-envelope verdicts', async () => {
    const plain = await startReferenceMcp({ pki, agentKeys: [key.pub], batchEndpoint: false });
    const c = clientFor(pki, plain.url);
    try {
      const good = evidenceEnvelope(key.secret, 1);
      const stranger = evidenceEnvelope(agentKey('stranger').secret, 1);
      const results = await c.postEvidenceBatch([good, stranger, evidenceEnvelope(key.secret, 2)]);
      expect(results.map((r) => r.kind)).toEqual(['ok', 'reject', 'ok']);
      expect(results[1]).toEqual({ kind: 'reject', reason: 'HTTP 400: no registered agent key named "stranger"' });
      expect(plain.stats()).toMatchObject({ unique: 2, rejected: 1 });
      expect((await c.postEvidenceBatch([evidenceEnvelope(key.secret, 3), evidenceEnvelope(key.secret, 4)])).map((r) => r.kind)).toEqual(['ok', 'ok']);
      expect(plain.stats().unique).toBe(4);
    } finally {
      await c.close();
      await plain.stop();
    }
  });
});
