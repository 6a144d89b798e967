import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness, type McpFault } from '../../testing/index.js';
import { mcpClientOptions, type McpPort } from '../../src/agent/index.js';
import { McpClient, type McpClientOptions } from '../../src/mcp/index.js';
import { openStateDb, stateLayout, type StateDb } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

// The agent's real mTLS client and outbox against a misbehaving MCP: whatever the MCP does, the
// agent acts on nothing, queues its evidence with growing backoff, stays small, and recovers.
const tmp = tempDir('ca-faults-mcp-');
let h: Harness;
let db: StateDb;

beforeAll(async () => {
  // Orders live a day, so the one waiting through a fault is still valid when the fault clears.
  h = await startHarness(tmp.path, { config: { orderTtl: 86_400 } });
  db = openStateDb(stateLayout(h.config.stateDir).db);
});
afterAll(async () => {
  db?.close();
  await h?.close();
  tmp.cleanup();
});

/** The production client with short timeouts (a slow drip must end within the test), counting exchanges. */
function countingClient(overrides: Partial<McpClientOptions> = {}): McpPort & { close(): Promise<void>; polls: number; posts: number } {
  const client = McpClient.create({
    ...mcpClientOptions(h.config),
    connectTimeoutMs: 1000,
    headersTimeoutMs: 1000,
    bodyTimeoutMs: 300,
    requestTimeoutMs: 1000,
    ...overrides,
  });
  const port = {
    polls: 0,
    posts: 0,
    nextOrder: () => (port.polls++, client.nextOrder()),
    postEvidenceBatch: (envs: Parameters<McpClient['postEvidenceBatch']>[0]) => (port.posts++, client.postEvidenceBatch(envs)),
    close: () => client.close(),
  };
  return port;
}

interface HeadRow {
  bundle_id: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
}
const head = (): HeadRow | undefined =>
  db.prepare("SELECT bundle_id, attempts, next_attempt_at, last_error FROM outbox WHERE destination = 'mcp' AND state = 'pending' ORDER BY id LIMIT 1").get() as
    HeadRow | undefined;

const MAX_BACKOFF_MS = 15 * 60_000;
const CYCLES = 4;

/**
 * Under the fault: a signed heal order waits at the MCP (or at a rogue server), a service is down,
 * CYCLES cycles run, each 16 minutes after the last (past any backoff). Returns what the agent did.
 */
async function underFault(port: ReturnType<typeof countingClient>, setFault: () => void): Promise<{ rssGrowth: number; heads: HeadRow[] }> {
  const rt = h.openAgent({ mcp: port });
  h.host.clearExecuted();
  h.host.stopService('postgresql.service');
  h.mcp.enqueueOrder(h.signOrder('heal', { checks: ['services'] }));
  setFault();
  const heads: HeadRow[] = [];
  const rssBefore = process.memoryUsage().rss;
  let rssMax = rssBefore;
  try {
    for (let i = 0; i < CYCLES; i++) {
      h.host.advance(16 * 60_000);
      const report = await rt.agent.cycle();
      expect(report.polled).toBe('failed');
      heads.push(head()!);
      rssMax = Math.max(rssMax, process.memoryUsage().rss);
    }
  } finally {
    h.mcp.setFault(null);
    await rt.close();
  }
  // Nothing acted on: the signed order never reached the healer.
  expect(h.host.actions()).toEqual([]);
  // Fail-closed evidence queued, not delivered.
  expect(heads.every((r) => r !== undefined)).toBe(true);
  // Backoff: the same head item is charged one attempt per cycle and rescheduled within the cap;
  // at most one evidence exchange per cycle (no tight retry loop).
  expect(new Set(heads.map((r) => r.bundle_id)).size).toBe(1);
  expect(heads.map((r) => r.attempts)).toEqual(heads.map((_, i) => heads[0]!.attempts + i));
  expect(heads[0]!.attempts).toBeGreaterThanOrEqual(1);
  for (const r of heads) {
    expect(r.last_error).toBeTruthy();
    expect(r.next_attempt_at).toBeLessThanOrEqual(h.host.now() + MAX_BACKOFF_MS);
  }
  expect(heads[CYCLES - 1]!.next_attempt_at).toBeGreaterThanOrEqual(h.host.now() - 1000);
  expect(port.posts).toBeLessThanOrEqual(CYCLES);
  expect(port.polls).toBe(CYCLES);
  return { rssGrowth: rssMax - rssBefore, heads };
}

/** Fault gone: the backlog flushes exactly once and the waiting order is acted on (it was never dequeued). */
async function recovers(expectOrder: boolean): Promise<void> {
  const rt = h.openAgent();
  h.host.advance(16 * 60_000);
  await rt.agent.cycle();
  expect(rt.agent.pending()).toBe(0);
  if (expectOrder) expect(h.host.actions()).toEqual(['systemctl restart -- postgresql.service']);
  await rt.close();
  const seqs = [...h.mcp.evidence().values()].map((e) => (JSON.parse(Buffer.from(e.envelope.payload, 'base64').toString('utf8')) as { seq: number }).seq).sort((a, b) => a - b);
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
}

const REFERENCE_FAULTS: [string, McpFault, RegExp][] = [
  ['connections reset (MCP down)', 'down', /reset \(ECONNRESET\)/],
  ['HTTP 500 on every request', { status: 500 }, /answered 500/],
  ['reset mid-body', 'reset_mid_body', /was reset/],
  ['slow drip (slowloris)', { slowDripMs: 100 }, /did not complete within 1000 ms|stalled the response body/],
  ['invalid JSON', 'invalid_json', /no results list|not JSON|no receipt/],
];

describe('reference MCP faults', () => {
  it.each(REFERENCE_FAULTS)('%s: nothing acted on, backoff grows, then recovery', async (_name, fault, error) => {
    const port = countingClient();
    const { heads } = await underFault(port, () => h.mcp.setFault(fault));
    expect(heads[CYCLES - 1]!.last_error).toMatch(error);
    await recovers(true);
  });

  it('a 100 MB response body: aborted at the cap, memory stays bounded', async () => {
    const port = countingClient({ bodyTimeoutMs: 5000, requestTimeoutMs: 10_000 });
    const { rssGrowth, heads } = await underFault(port, () => h.mcp.setFault({ hugeBodyBytes: 100 * 1024 * 1024 }));
    expect(heads[CYCLES - 1]!.last_error).toMatch(/over the 262144-byte cap; aborted/);
    // Sanity bound: buffering even one body would add 100 MB.
    expect(rssGrowth).toBeLessThan(40 * 1024 * 1024);
    expect(h.mcp.stats().faultBytesSent).toBeLessThan(16 * 1024 * 1024);
    await recovers(true);
  });
});

describe('no MCP at the configured address', () => {
  it('connection refused: nothing acted on, backoff grows', async () => {
    const closed = createTcpServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { heads } = await underFault(countingClient({ mcpUrl: `https://127.0.0.1:${port}` }), () => undefined);
    expect(heads[CYCLES - 1]!.last_error).toMatch(/refused \(ECONNREFUSED\)/);
    // The heal order waited at the real MCP the whole time: it is acted on once the agent reaches it.
    await recovers(true);
  });

  it('wrong certificate: a server not signed by caFile serving a validly signed order is never read', async () => {
    let requests = 0;
    const order = h.signOrder('heal', { checks: ['services'] });
    const rogue: Server = createHttpsServer({ key: readFileSync(h.pki.rogueServerKey), cert: readFileSync(h.pki.rogueServerCert) }, (req, res) => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.url?.startsWith('/orders') ? order : { results: [] }));
    });
    await new Promise<void>((r) => rogue.listen(0, '127.0.0.1', r));
    try {
      const { heads } = await underFault(countingClient({ mcpUrl: `https://127.0.0.1:${(rogue.address() as AddressInfo).port}` }), () => undefined);
      expect(heads[CYCLES - 1]!.last_error).toMatch(/^TLS to 127\.0\.0\.1:\d+ failed: server certificate is not signed by the CA in /);
      expect(requests).toBe(0);
    } finally {
      await new Promise((r) => rogue.close(r));
    }
    await recovers(true);
  });
});
