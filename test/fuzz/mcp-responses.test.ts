import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import fc from 'fast-check';
import { MockAgent } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generatePki, type Pki } from '../../testing/index.js';
import { ORDER_PAYLOAD_TYPE, envelopeHash, signEnvelope, type Envelope } from '../../src/crypto/index.js';
import { signReceipt } from '../../src/evidence/index.js';
import { McpClient, type McpFailure } from '../../src/mcp/index.js';
import { checkOrder, REJECT_REASONS } from '../../src/orders/index.js';
import type { DeliveryResult } from '../../src/queue/index.js';
import { agentKey, evidenceEnvelope } from '../mcp/fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { fixedKeySeed, seeded } from '../helpers/fuzz.js';
import { FUZZ_RUNS, isOneBoundedLine } from './sign.js';

// MCP responses, random and mutated from valid ones, through the agent's MCP client. The client's
// response handling (status, headers, size cap, JSON, receipts, batch results) is fuzzed 10,000
// times with undici's MockAgent in place of its connection pool (real undici response streams, no
// sockets), then the same properties hold over real mTLS for 1,000 well-formed exchanges and 400
// malformed byte streams. Properties: the client never throws, every outcome is a value with a
// bounded one-line message, a receipt is taken only from a well-formed success, and an order
// handed over is never one the agent would accept unless the MSP signed it.

const tmp = tempDir('ca-fuzz-mcp-');
const agent = agentKey('appliance-1', fixedKeySeed('appliance-1'));
const msp = agentKey('msp-2026', fixedKeySeed('msp-2026'));
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const VALID_ORDER = JSON.stringify({
  payloadType: 'application/vnd.compliance-agent.order+json;version=1',
  payload: Buffer.from(
    JSON.stringify({
      order_id: '6f1b3a2e-1c4d-4e5f-8a9b-0c1d2e3f4a5b',
      site_id: 'clinic-001',
      host_id: 'appliance-1',
      sequence: 7,
      issued_at: '2026-11-23T11:59:00Z',
      expires_at: '2026-11-23T12:09:00Z',
      policy_version: '1.0',
      type: 'run_checks',
      params: {},
    }),
  ).toString('base64'),
  signatures: [{ keyid: 'placeholder', sig: '' }],
});
const ENVELOPES: Envelope[] = Array.from({ length: 3 }, (_, i) => evidenceEnvelope(agent.secret, i + 1));
// The MCP's receipt key, pinned in every client: genuine receipts for ENVELOPES, as the only way to an `ok`.
const mcpReceipts = agentKey('mcp-receipts');
const RECEIPTS: Envelope[] = ENVELOPES.map((env, i) => {
  const b = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { bundle_id: string; seq: number };
  return signReceipt(
    {
      receipt_id: `rcpt-${i}`,
      bundle_id: b.bundle_id,
      envelope_hash: envelopeHash(env),
      site_id: 'clinic-001',
      host_id: 'appliance-1',
      seq: b.seq,
      received_at: '2026-11-23T12:00:00Z',
    },
    mcpReceipts.secret,
  );
});

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

let pki: Pki;
let server: Server;
let raw: TlsServer;
let client: McpClient;
let rawClient: McpClient;
let mocked: McpClient;
let mockedRequests = 0;
const mock = new MockAgent();
let signedOrder: string;
let current: Reply = { status: 204, headers: {}, body: Buffer.alloc(0) };
let currentRaw: Buffer = Buffer.alloc(0);
/** Deliveries that ended in `ok`: the fuzzer must reach the acceptance path, not only refusals. */
let oks = 0;

beforeAll(async () => {
  pki = await generatePki(tmp.path, { clientCn: 'appliance-1' });
  const parsed = JSON.parse(VALID_ORDER) as Envelope;
  signedOrder = JSON.stringify(signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from(parsed.payload, 'base64'), msp.secret));
  const tls = { key: readFileSync(pki.serverKey), cert: readFileSync(pki.serverCert), ca: readFileSync(pki.caCert), requestCert: true, rejectUnauthorized: true };
  server = createServer(tls, (req, res) => {
    req.resume();
    req.on('end', () => {
      const r = current;
      try {
        res.writeHead(r.status, r.headers);
        res.end(r.body);
      } catch {
        // A header the fuzzer made that node refuses to send: the client sees a reset.
        res.destroy();
      }
    });
  });
  raw = createTlsServer(tls, (s: TLSSocket) => {
    s.once('data', () => {
      s.end(currentRaw);
    });
    s.on('error', () => undefined);
  });
  await Promise.all([new Promise<void>((r) => server.listen(0, '127.0.0.1', r)), new Promise<void>((r) => raw.listen(0, '127.0.0.1', r))]);
  const opts = {
    receiptKeys: [mcpReceipts.pub],
    caFile: pki.caCert,
    clientCertFile: pki.clientCert,
    clientKeyFile: pki.clientKey,
    siteId: 'clinic-001',
    hostId: 'appliance-1',
    headersTimeoutMs: 2000,
    bodyTimeoutMs: 2000,
    requestTimeoutMs: 3000,
  };
  client = McpClient.create({ ...opts, mcpUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
  rawClient = McpClient.create({ ...opts, mcpUrl: `https://127.0.0.1:${(raw.address() as AddressInfo).port}` });
  mocked = McpClient.create({ ...opts, mcpUrl: 'https://mcp.invalid:8443' });
  mock.disableNetConnect();
  mock
    .get('https://mcp.invalid:8443')
    .intercept({ path: () => true, method: () => true })
    .reply(() => {
      mockedRequests++;
      return { statusCode: current.status, data: current.body, responseOptions: { headers: current.headers } };
    })
    .persist();
  // The client's own pool is swapped for the mock; the count below proves every exchange went through it.
  Object.assign(Reflect.get(mocked, 'http') as object, { dispatcher: mock });
});
afterAll(async () => {
  await mock.close();
  await client?.close();
  await rawClient?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await new Promise((r) => raw?.close(r));
  tmp.cleanup();
});

const jsonish = fc.oneof(
  fc.jsonValue(),
  fc.anything().map((v) => (v === undefined ? null : v)),
);
const bodyArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
  { weight: 2, arbitrary: jsonish.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.constant('r'.repeat(300)), fc.constant('\u0000\u001b[2J\n'))
      .map((receipt) => Buffer.from(JSON.stringify({ receipt_id: receipt }))),
  },
  { weight: 1, arbitrary: fc.constant(Buffer.from('{"receipt_id":"rcpt-1"}')) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom(
          JSON.stringify({ receipt: RECEIPTS[0] }),
          JSON.stringify({ results: RECEIPTS.map((receipt) => ({ receipt })) }),
          JSON.stringify({ results: [...RECEIPTS].reverse().map((receipt) => ({ receipt })) }),
        ),
        fc.option(fc.tuple(fc.nat(), fc.nat({ max: 255 }))),
      )
      .map(([text, flip]) => (flip ? flipByte(Buffer.from(text), flip[0], flip[1]) : Buffer.from(text))),
  },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.oneof(
          fc.record({ bundle_id: fc.uuid(), receipt_id: fc.string({ maxLength: 20 }) }),
          fc.record({ index: fc.nat({ max: 4 }), error: fc.string({ unit: 'grapheme', maxLength: 300 }) }),
          jsonish,
        ),
        { maxLength: 5 },
      )
      .map((results) => Buffer.from(JSON.stringify({ results }))),
  },
  { weight: 1, arbitrary: fc.constantFrom(VALID_ORDER, 'signed').map((v) => Buffer.from(v === 'signed' ? signedOrder : v)) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.nat({ max: 255 })).map(([i, b]) => flipByte(Buffer.from(signedOrder), i, b)) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(300 * 1024, 0x20)) },
);

function flipByte(buf: Buffer, i: number, b: number): Buffer {
  const copy = Buffer.from(buf);
  copy[i % copy.length] = b;
  return copy;
}

const statusArb = fc.oneof(fc.constantFrom(200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 413, 429, 500, 502, 503), fc.integer({ min: 200, max: 599 }));
const headerName = fc.stringMatching(/^x-[a-z0-9-]{1,20}$/);
const headersArb = fc
  .record({
    type: fc.constantFrom('application/json', 'text/html', 'application/octet-stream', '', 'application/json; charset=latin1'),
    extra: fc.dictionary(headerName, fc.string({ maxLength: 40 }), { maxKeys: 3 }),
    close: fc.nat({ max: 99 }).map((n) => n === 0),
  })
  .map(({ type, extra, close }) => ({ ...(type ? { 'content-type': type } : {}), ...extra, ...(close ? { connection: 'close' } : {}) }));

type Call = 'order' | 'evidence' | 'batch';

function checkFailure(e: McpFailure): void {
  expect(['tls', 'dns', 'refused', 'timeout', 'reset', 'http_status', 'too_large', 'bad_json', 'config']).toContain(e.code);
  expect(isOneBoundedLine(e.message, 600), JSON.stringify(e.message).slice(0, 300)).toBe(true);
  expect(typeof e.retryable).toBe('boolean');
}

function checkDelivery(r: DeliveryResult, status: number | null, receipts: readonly unknown[], sent: Envelope): void {
  if (r.kind === 'ok') {
    // A receipt only from a 2xx answer that carried it, countersigned by the pinned key, for exactly this envelope.
    expect(status === null || [200, 201].includes(status)).toBe(true);
    expect(receipts).toContain(r.receiptId);
    expect(r.receipt?.keyid).toBe('mcp-receipts');
    expect(r.receipt?.receipt.envelope_hash).toBe(envelopeHash(sent));
    expect(r.receiptId.length).toBeGreaterThan(0);
    expect(r.receiptId.length).toBeLessThanOrEqual(256);
  } else if (r.kind === 'reject') {
    expect(isOneBoundedLine(r.reason, 600), JSON.stringify(r.reason).slice(0, 300)).toBe(true);
  } else {
    expect(isOneBoundedLine(r.error, 600), JSON.stringify(r.error).slice(0, 300)).toBe(true);
  }
}

/** Every receipt_id inside a receipt the body holds, wherever: the only strings a delivery may report as receipts. */
function receiptsIn(body: Buffer): unknown[] {
  const idOf = (receipt: unknown): unknown => {
    try {
      return (JSON.parse(Buffer.from((receipt as { payload: string }).payload, 'base64').toString('utf8')) as { receipt_id?: unknown }).receipt_id;
    } catch {
      return undefined;
    }
  };
  try {
    const v = JSON.parse(body.toString('utf8')) as { receipt?: unknown; results?: { receipt?: unknown }[] };
    return [idOf(v?.receipt), ...(Array.isArray(v?.results) ? v.results.map((x) => idOf(x?.receipt)) : [])];
  } catch {
    return [];
  }
}

async function exercise(c: McpClient, call: Call, status: number | null, body: Buffer): Promise<void> {
  if (call === 'order') {
    const r = await c.nextOrder();
    if (!r.ok) return checkFailure(r.error);
    if (status !== null) expect([200, 204]).toContain(status);
    if (r.envelope === null) return;
    // What the agent does next with it: only the MSP's intact signature is ever accepted.
    const decision = checkOrder(r.envelope, { trustedKeys: [msp.pub], siteId: 'clinic-001', hostId: 'appliance-1', orderTtlS: 900, ntpMaxSkewMs: 5000, now: NOW });
    if (decision.decision === 'accepted') expect(body.toString('utf8')).toBe(signedOrder);
    else {
      expect(REJECT_REASONS).toContain(decision.reason);
      expect(isOneBoundedLine(decision.message, 600)).toBe(true);
    }
    return;
  }
  const envs = call === 'evidence' ? ENVELOPES.slice(0, 1) : ENVELOPES;
  const results = call === 'evidence' ? [await c.postEvidence(envs[0]!)] : await c.postEvidenceBatch(envs);
  expect(results).toHaveLength(envs.length);
  results.forEach((r, i) => checkDelivery(r, status, receiptsIn(body), envs[i]!));
  if (results.some((r) => r.kind === 'ok')) oks++;
}

const exchangeArb = fc.tuple(statusArb, headersArb, bodyArb, fc.constantFrom<Call>('order', 'order', 'evidence', 'batch'));

async function fuzzExchanges(c: McpClient, runs: number): Promise<number> {
  const outcomes = new Set<string>();
  await fc.assert(
    fc.asyncProperty(exchangeArb, async ([status, headers, body, call]) => {
      current = { status, headers, body: status === 204 || status === 304 ? Buffer.alloc(0) : body };
      await exercise(c, call, status, current.body);
      outcomes.add(`${call} ${status}`);
    }),
    seeded(`MCP exchanges (${runs})`, { numRuns: runs }),
  );
  return outcomes.size;
}

it(`${FUZZ_RUNS} fuzzed responses through the client's response handling: no throw, bounded one-line outcomes, receipts only from well-formed successes`, async () => {
  expect(await fuzzExchanges(mocked, FUZZ_RUNS)).toBeGreaterThan(200);
  expect(oks).toBeGreaterThan(0);
  expect(mockedRequests).toBeGreaterThanOrEqual(FUZZ_RUNS);
});

// Found by the fuzzer (seed 1361453471, before envelopes decoded base64 strictly): the signed order
// with the last signature character changed from one spelling of the same bytes to another was
// accepted although the MCP sent different bytes than the MSP signed.
it('a signed order whose signature is respelled with the same bytes (...Q== as ...R==) is refused as bad_envelope', async () => {
  const env = JSON.parse(signedOrder) as Envelope;
  const sig = env.signatures[0]!.sig;
  const last = sig.length - 3;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const respelled = `${sig.slice(0, last)}${alphabet[alphabet.indexOf(sig[last]!) ^ 1]}${sig.slice(last + 1)}`;
  expect(Buffer.from(respelled, 'base64').equals(Buffer.from(sig, 'base64'))).toBe(true);
  current = {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: Buffer.from(JSON.stringify({ ...env, signatures: [{ ...env.signatures[0]!, sig: respelled }] })),
  };
  const r = await mocked.nextOrder();
  expect(r.ok && r.envelope !== null).toBe(true);
  const decision = checkOrder(r.ok ? r.envelope : null, { trustedKeys: [msp.pub], siteId: 'clinic-001', hostId: 'appliance-1', orderTtlS: 900, ntpMaxSkewMs: 5000, now: NOW });
  expect(decision).toMatchObject({ decision: 'rejected', reason: 'bad_envelope' });
  current = { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(signedOrder) };
  const intact = await mocked.nextOrder();
  expect(
    checkOrder(intact.ok ? intact.envelope : null, { trustedKeys: [msp.pub], siteId: 'clinic-001', hostId: 'appliance-1', orderTtlS: 900, ntpMaxSkewMs: 5000, now: NOW }).decision,
  ).toBe('accepted');
});

it('1,000 fuzzed responses over real mTLS on keep-alive: the same properties', async () => {
  expect(await fuzzExchanges(client, 1000)).toBeGreaterThan(100);
  // Counted, not timed: 6 s on a quiet machine, over 60 s on a loaded one.
}, 300_000);

/** HTTP that is not quite HTTP: each on its own connection, which the server ends after writing it. */
const rawArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc
    .constantFrom(
      'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"receipt_id":',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nnot-hex\r\n',
      'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\n{"a":1}',
      'HTTP/1.1 999 Whatever\r\ncontent-length: 2\r\n\r\n{}',
      'HTTP/1.0 200\r\n\r\n{"receipt_id":"rcpt-early-close"}',
      'HTTP/1.1 200 OK\r\nX-Bad\u0000Header: 1\r\ncontent-length: 2\r\n\r\n{}',
      'SSH-2.0-OpenSSH_9.6\r\n',
      'HTTP/1.1 200 OK\r\n',
    )
    .map((s) => Buffer.from(s, 'latin1')),
  fc
    .tuple(fc.constantFrom('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 23\r\n\r\n{"receipt_id":"rcpt-9"}'), fc.nat(), fc.nat({ max: 255 }))
    .map(([s, i, b]) => flipByte(Buffer.from(s, 'latin1'), i, b)),
);

it('400 malformed byte streams after the TLS handshake: no throw, bounded one-line outcomes', async () => {
  await fc.assert(
    fc.asyncProperty(rawArb, fc.constantFrom<Call>('order', 'evidence', 'batch'), async (bytes, call) => {
      currentRaw = bytes;
      await exercise(rawClient, call, null, bytes.subarray(bytes.indexOf('\r\n\r\n') + 4));
    }),
    seeded('malformed byte streams', { numRuns: 400 }),
  );
});
