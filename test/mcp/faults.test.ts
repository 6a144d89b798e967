import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORDER_PAYLOAD_TYPE, signEnvelope } from '../../src/crypto/index.js';
import type { McpClient, McpFailure } from '../../src/mcp/index.js';
import { generatePki, type Pki, startReferenceMcp, type ReferenceMcp } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';
import { agentKey, bundleIdOf, clientFor, evidenceEnvelope } from './fixtures.js';

const tmp = tempDir('mcp-faults-');
const key = agentKey('appliance-1');
let pki: Pki;
let mcp: ReferenceMcp;
let client: McpClient;
let seq = 0;

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

const nextEnvelope = () => evidenceEnvelope(key.secret, ++seq);

async function orderError(c: McpClient = client): Promise<McpFailure> {
  const r = await c.nextOrder();
  if (r.ok) throw new Error(`expected a failure, got ${JSON.stringify(r)}`);
  return r.error;
}

async function withClient<T>(overrides: Parameters<typeof clientFor>[2], fn: (c: McpClient) => Promise<T>): Promise<T> {
  const c = clientFor(pki, mcp.url, overrides);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** Waits until a reading stops changing (the server noticing the client hung up), not a timing. */
async function settled(read: () => number): Promise<number> {
  let last = read();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const now = read();
    if (now === last) return now;
    last = now;
  }
}

describe('MCP down or unreachable', () => {
  it('down: connections reset, evidence is kept for retry, and it flows again when the MCP is back', async () => {
    const env = nextEnvelope();
    mcp.setFault('down');
    try {
      expect(await orderError()).toEqual({ code: 'reset', message: `connection to 127.0.0.1:${mcp.port} was reset (ECONNRESET)`, retryable: true });
      expect(await client.postEvidence(env)).toEqual({ kind: 'retry', error: `connection to 127.0.0.1:${mcp.port} was reset (ECONNRESET)` });
      const batch = await client.postEvidenceBatch([env, nextEnvelope()]);
      expect(batch.map((r) => r.kind)).toEqual(['retry', 'retry']);
    } finally {
      mcp.setFault(null);
    }
    expect(mcp.evidence().has(bundleIdOf(env))).toBe(false);
    expect((await client.postEvidence(env)).kind).toBe('ok');
    expect((await client.nextOrder()).ok).toBe(true);
  });

  it('refused: nothing listening on the port', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const c = clientFor(pki, `https://127.0.0.1:${port}`);
    expect(await orderError(c)).toEqual({ code: 'refused', message: `connection to 127.0.0.1:${port} refused (ECONNREFUSED)`, retryable: true });
    expect((await c.postEvidence(nextEnvelope())).kind).toBe('retry');
    await c.close();
  });

  it('DNS: a name that cannot resolve', async () => {
    const c = clientFor(pki, 'https://nonexistent.invalid:8443');
    const e = await orderError(c);
    expect(e.code).toBe('dns');
    expect(e.message).toMatch(/^cannot resolve nonexistent\.invalid: (ENOTFOUND|EAI_AGAIN)$/);
    expect(e.retryable).toBe(true);
    await c.close();
  });

  it('connect timeout: a peer that accepts TCP and never speaks TLS', async () => {
    const held: Socket[] = [];
    const silent: Server = createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const c = clientFor(pki, `https://127.0.0.1:${port}`, { connectTimeoutMs: 300 });
    try {
      expect(await orderError(c)).toEqual({
        code: 'timeout',
        message: `connecting to 127.0.0.1:${port} timed out after 300 ms (UND_ERR_CONNECT_TIMEOUT)`,
        retryable: true,
      });
    } finally {
      await c.close();
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});

describe('HTTP status faults', () => {
  it('500: retry, and nothing is stored', async () => {
    const env = nextEnvelope();
    mcp.setFault({ status: 500 });
    try {
      expect(await client.postEvidence(env)).toEqual({ kind: 'retry', error: `MCP 127.0.0.1:${mcp.port} answered 500 to POST /evidence: injected fault` });
      expect((await client.postEvidenceBatch([env, nextEnvelope()])).map((r) => r.kind)).toEqual(['retry', 'retry']);
      expect(await orderError()).toEqual({
        code: 'http_status',
        status: 500,
        message: `MCP 127.0.0.1:${mcp.port} answered 500 to GET /orders/next: injected fault`,
        retryable: true,
      });
    } finally {
      mcp.setFault(null);
    }
    expect(mcp.evidence().has(bundleIdOf(env))).toBe(false);
  });

  it('429 and 503 are retried, not dead-lettered', async () => {
    for (const status of [429, 503]) {
      mcp.setFault({ status });
      try {
        expect((await client.postEvidence(nextEnvelope())).kind).toBe('retry');
      } finally {
        mcp.setFault(null);
      }
    }
  });

  it('4xx: reject with the status and the server text, made one bounded printable line', async () => {
    mcp.setFault({ status: 403, body: `host\nnot\u001b[31m allowed ${'x'.repeat(1000)}` });
    try {
      const r = await client.postEvidence(nextEnvelope());
      expect(r.kind).toBe('reject');
      if (r.kind !== 'reject') return;
      expect(r.reason.startsWith('HTTP 403: host not [31m allowed xxx')).toBe(true);
      expect(r.reason).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(r.reason.length).toBeLessThan(250);
      const order = await orderError();
      expect(order).toMatchObject({ code: 'http_status', status: 403, retryable: false });
    } finally {
      mcp.setFault(null);
    }
  });

  it('a whole-batch 4xx is not applied to every envelope: each is posted alone for its own verdict', async () => {
    mcp.setFault({ status: 400, body: 'batch refused' });
    const envs = [nextEnvelope(), nextEnvelope()];
    let results;
    try {
      results = await client.postEvidenceBatch(envs);
    } finally {
      mcp.setFault(null);
    }
    expect(results).toEqual([
      { kind: 'reject', reason: 'HTTP 400: batch refused' },
      { kind: 'reject', reason: 'HTTP 400: batch refused' },
    ]);
  });
});

describe('response faults after the MCP processed the request', () => {
  it('reset mid-body: retry; the retry gets the receipt of the evidence the MCP already stored', async () => {
    const env = nextEnvelope();
    mcp.setFault('reset_mid_body');
    try {
      const r = await client.postEvidence(env);
      expect(r.kind).toBe('retry');
      expect(r.kind === 'retry' && r.error).toMatch(new RegExp(`^connection to 127\\.0\\.0\\.1:${mcp.port} was reset \\((ECONNRESET|UND_ERR_SOCKET)\\)$`));
      expect((await orderError()).code).toBe('reset');
    } finally {
      mcp.setFault(null);
    }
    const stored = mcp.evidence().get(bundleIdOf(env));
    expect(stored).toBeDefined();
    expect(await client.postEvidence(env)).toMatchObject({ kind: 'ok', receiptId: stored?.receiptId });
  });

  it('invalid JSON: bad_json for an order, retry for evidence (then the same receipt)', async () => {
    const env = nextEnvelope();
    mcp.setFault('invalid_json');
    try {
      expect(await orderError()).toEqual({ code: 'bad_json', message: `MCP 127.0.0.1:${mcp.port} answered GET /orders/next with a body that is not JSON`, retryable: true });
      expect(await client.postEvidence(env)).toEqual({ kind: 'retry', error: `MCP 127.0.0.1:${mcp.port} answered POST /evidence with a body that is not JSON` });
      expect((await client.postEvidenceBatch([env, nextEnvelope()])).map((r) => r.kind)).toEqual(['retry', 'retry']);
    } finally {
      mcp.setFault(null);
    }
    expect(await client.postEvidence(env)).toMatchObject({ kind: 'ok', receiptId: mcp.evidence().get(bundleIdOf(env))?.receiptId });
  });

  it('an order queued during a response fault is not lost: it is served once the fault clears', async () => {
    const order = signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from('{"n":1}'), agentKey('msp').secret);
    mcp.enqueueOrder(order);
    mcp.setFault('invalid_json');
    try {
      expect((await orderError()).code).toBe('bad_json');
    } finally {
      mcp.setFault(null);
    }
    expect(await client.nextOrder()).toEqual({ ok: true, envelope: order });
  });
});

describe('timeouts', () => {
  it('slow drip: a body that stalls longer than bodyTimeout ends in a timeout', async () => {
    mcp.setFault({ slowDripMs: 5_000 });
    try {
      const e = await withClient({ bodyTimeoutMs: 300 }, orderError);
      expect(e).toEqual({ code: 'timeout', message: `127.0.0.1:${mcp.port} stalled the response body for 300 ms (UND_ERR_BODY_TIMEOUT)`, retryable: true });
    } finally {
      mcp.setFault(null);
    }
  });

  it('slowloris inside bodyTimeout: the whole-request deadline still ends it', async () => {
    mcp.setFault({ slowDripMs: 50 });
    try {
      const e = await withClient({ bodyTimeoutMs: 10_000, requestTimeoutMs: 800 }, orderError);
      expect(e).toEqual({ code: 'timeout', message: `request to 127.0.0.1:${mcp.port} did not complete within 800 ms`, retryable: true });
    } finally {
      mcp.setFault(null);
    }
  });

  it('headers held back longer than headersTimeout: timeout, and evidence is retried', async () => {
    mcp.setFault({ delayMs: 3_000 });
    try {
      await withClient({ headersTimeoutMs: 300 }, async (c) => {
        expect(await orderError(c)).toEqual({
          code: 'timeout',
          message: `127.0.0.1:${mcp.port} sent no response headers within 300 ms (UND_ERR_HEADERS_TIMEOUT)`,
          retryable: true,
        });
        expect((await c.postEvidence(nextEnvelope())).kind).toBe('retry');
      });
    } finally {
      mcp.setFault(null);
    }
  });
});

describe('response size cap', () => {
  it('a 100 MB streamed body is aborted at the cap with bounded memory', async () => {
    const hundredMb = 100 * 1024 * 1024;
    mcp.setFault({ hugeBodyBytes: hundredMb });
    const rssBefore = process.memoryUsage().rss;
    let e: McpFailure;
    let sent: number;
    try {
      e = await orderError();
      sent = await settled(() => mcp.stats().faultBytesSent);
    } finally {
      mcp.setFault(null);
    }
    const growth = process.memoryUsage().rss - rssBefore;
    expect(e).toEqual({
      code: 'too_large',
      message: `127.0.0.1:${mcp.port} response to GET /orders/next sent more than 262144 bytes, over the 262144-byte cap; aborted`,
      retryable: true,
    });
    // The server stopped early because the client hung up, not because it finished 100 MB.
    expect(sent).toBeLessThan(16 * 1024 * 1024);
    // Sanity bound: buffering the body would grow RSS by 100 MB or more.
    expect(growth).toBeLessThan(40 * 1024 * 1024);
    expect((await client.nextOrder()).ok).toBe(true);
  });

  it('a declared Content-Length over the cap is refused before reading', async () => {
    mcp.setFault({ hugeBodyBytes: 100 * 1024 * 1024, declareLength: true });
    try {
      expect(await orderError()).toEqual({
        code: 'too_large',
        message: `127.0.0.1:${mcp.port} response to GET /orders/next declares 104857600 bytes, over the 262144-byte cap; aborted`,
        retryable: true,
      });
    } finally {
      mcp.setFault(null);
    }
  });

  it('the cap is configurable, and evidence over it is retried', async () => {
    mcp.setFault({ hugeBodyBytes: 4096 });
    try {
      await withClient({ maxResponseBytes: 1024 }, async (c) => {
        expect((await orderError(c)).code).toBe('too_large');
        expect((await c.postEvidence(nextEnvelope())).kind).toBe('retry');
      });
    } finally {
      mcp.setFault(null);
    }
  });
});

describe('redirects', () => {
  it('a 3xx from the MCP is a failure: the client follows no Location, for orders or evidence', async () => {
    const tls = { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey) };
    let reached = 0;
    const target = createHttpsServer(tls, (_req, res) => (reached++, res.writeHead(204).end()));
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const targetUrl = `https://localhost:${(target.address() as AddressInfo).port}`;
    const redirector = createHttpsServer(tls, (req, res) => {
      req.resume();
      res.writeHead(req.method === 'GET' ? 302 : 307, { location: `${targetUrl}${req.url}` }).end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    const c = clientFor(pki, `https://localhost:${(redirector.address() as AddressInfo).port}`);
    try {
      const error = await orderError(c);
      expect(error.code).toBe('http_status');
      expect(error.message).toMatch(/302/);
      const [result] = await c.postEvidenceBatch([nextEnvelope()]);
      expect(result!.kind).not.toBe('ok');
      expect(reached).toBe(0);
    } finally {
      await c.close();
      await new Promise((r) => redirector.close(r));
      await new Promise((r) => target.close(r));
    }
  });
});
