import { AgentError, HttpAgent, oneLine } from '../common/index.js';
import { envelopeHash, type Envelope, type PublicKey } from '../crypto/index.js';
import { checkReceipt, claimedBundle, type ReceiptExpectation } from '../evidence/index.js';
import type { DeliveryResult } from '../queue/index.js';
import { readCapped } from './capped-body.js';
import { classifyTransportError, type Endpoint } from './failure.js';
import { parseMcpUrl, pinnedTls } from './target.js';
import { loadTlsMaterial } from './tls-files.js';
import type { McpClientOptions, McpFailure, NextOrderResult } from './types.js';

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  requestTimeoutMs: 60_000,
  maxResponseBytes: 256 * 1024,
};

/**
 * The reference MCP takes up to 500 envelopes and 16 MiB per batch; stay well inside both, and keep
 * the answer (one countersigned receipt of about 600 bytes per envelope) far below the response cap.
 */
const BATCH_MAX_ENVELOPES = 200;
const BATCH_MAX_BYTES = 8 * 1024 * 1024;
/** Parallel single posts when the MCP has no batch endpoint. */
const SINGLE_POST_CONCURRENCY = 4;
/** After a 404/405 from the batch endpoint, single posts for this long, then the batch endpoint again. */
const BATCH_RETRY_AFTER_MS = 60 * 60_000;

/** The cycle's flush budget ran out: the exchange was not started, or was aborted in flight. */
function budgetSpent(method: string, path: string): McpFailure {
  return { code: 'timeout', message: `${method} ${path} stopped: the cycle's flush budget is spent (the rest waits for the next cycle)`, retryable: true };
}

type Exchange = { ok: true; status: number; body: Buffer } | { ok: false; error: McpFailure };

function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** The server's own words about a refusal: its `error` field, or the raw text, made one safe line. */
function serverText(body: Buffer): string {
  const text = body.toString('utf8');
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed?.error === 'string') return oneLine(parsed.error);
  } catch {
    // not JSON: the raw text is all there is
  }
  return oneLine(text) || '(no body)';
}

function parseJson(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false };
  }
}

/** What a receipt for `env` must name; null when the envelope is not an evidence bundle we can read. */
function expectationOf(env: Envelope): ReceiptExpectation | null {
  const b = claimedBundle(env) as { bundle_id?: unknown; seq?: unknown; host_id?: unknown } | null;
  if (typeof b?.bundle_id !== 'string' || typeof b.seq !== 'number' || typeof b.host_id !== 'string') return null;
  return { bundleId: b.bundle_id, seq: b.seq, hostId: b.host_id, envelopeHash: envelopeHash(env) };
}

/** Envelopes split into batches under the count and size limits, keeping order. */
function chunk(envelopes: readonly Envelope[]): { envelopes: Envelope[]; body: string }[] {
  const out: { envelopes: Envelope[]; body: string }[] = [];
  let current: Envelope[] = [];
  let parts: string[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (current.length === 0) return;
    out.push({ envelopes: current, body: `{"envelopes":[${parts.join(',')}]}` });
    current = [];
    parts = [];
    bytes = 0;
  };
  for (const env of envelopes) {
    const json = JSON.stringify(env);
    if (current.length >= BATCH_MAX_ENVELOPES || (current.length > 0 && bytes + json.length > BATCH_MAX_BYTES)) flush();
    current.push(env);
    parts.push(json);
    bytes += json.length + 1;
  }
  flush();
  return out;
}

/**
 * The agent's MCP client (docs/mcp-api.md): mTLS with the CA pinned from caFile only, keep-alive,
 * connect/headers/body/request timeouts and a response size cap enforced while streaming.
 * It never throws for a failed exchange: every outcome is a value with one clear line.
 */
export class McpClient {
  /** Until when (this.clock) the batch endpoint is not tried again; 0 = try it. */
  private batchUnsupportedUntil = 0;

  private constructor(
    private readonly dispatcher: HttpAgent,
    private readonly origin: string,
    private readonly pathPrefix: string,
    private readonly ep: Endpoint,
    private readonly ids: { siteId: string; hostId: string },
    private readonly maxResponseBytes: number,
    private readonly receiptKeys: readonly PublicKey[],
    private readonly clock: () => number,
    private readonly batchRetryAfterMs: number,
  ) {}

  /** Reads the TLS files now; a missing or mismatched file is an AgentError('mcp_config') naming it. */
  static create(opts: McpClientOptions): McpClient {
    const target = parseMcpUrl(opts.mcpUrl);
    const tls = loadTlsMaterial(opts);
    const t = {
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      headersTimeoutMs: opts.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs,
      bodyTimeoutMs: opts.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    };
    const dispatcher = new HttpAgent({
      connect: pinnedTls(target, tls.ca, t.connectTimeoutMs, tls),
      headersTimeout: t.headersTimeoutMs,
      bodyTimeout: t.bodyTimeoutMs,
      keepAliveTimeout: 10_000,
      keepAliveMaxTimeout: 60_000,
      connections: SINGLE_POST_CONCURRENCY,
    });
    const ep: Endpoint = {
      hostPort: target.hostPort,
      hostname: target.hostname,
      caFile: opts.caFile,
      clientCertFile: opts.clientCertFile,
      clientCertNotAfter: tls.clientCertNotAfter,
      ...t,
    };
    return new McpClient(
      dispatcher,
      target.origin,
      target.pathPrefix,
      ep,
      { siteId: opts.siteId, hostId: opts.hostId },
      opts.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
      opts.receiptKeys ?? [],
      opts.now ?? Date.now,
      opts.batchRetryAfterMs ?? BATCH_RETRY_AFTER_MS,
    );
  }

  private async exchange(method: 'GET' | 'POST', path: string, body?: string, budget?: AbortSignal): Promise<Exchange> {
    if (budget?.aborted) return { ok: false, error: budgetSpent(method, `${this.pathPrefix}${path}`) };
    try {
      const res = await this.dispatcher.request({
        origin: this.origin,
        path: `${this.pathPrefix}${path}`,
        method,
        headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body }),
        signal: budget ? AbortSignal.any([AbortSignal.timeout(this.ep.requestTimeoutMs), budget]) : AbortSignal.timeout(this.ep.requestTimeoutMs),
      });
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > this.maxResponseBytes) {
        res.body.destroy();
        return { ok: false, error: this.tooLarge(method, path, `declares ${declared} bytes`) };
      }
      const read = await readCapped(res.body, this.maxResponseBytes);
      if (!read.ok) return { ok: false, error: this.tooLarge(method, path, `sent more than ${this.maxResponseBytes} bytes`) };
      return { ok: true, status: res.statusCode, body: read.bytes };
    } catch (e) {
      if (budget?.aborted) return { ok: false, error: budgetSpent(method, `${this.pathPrefix}${path}`) };
      return { ok: false, error: classifyTransportError(e, this.ep) };
    }
  }

  private tooLarge(method: string, path: string, what: string): McpFailure {
    return { code: 'too_large', message: `${this.ep.hostPort} response to ${method} ${this.pathPrefix}${path.split('?')[0]} ${what}, over the ${this.maxResponseBytes}-byte cap; aborted`, retryable: true };
  }

  private statusFailure(method: string, path: string, status: number, body: Buffer): McpFailure {
    return {
      code: 'http_status',
      message: `MCP ${this.ep.hostPort} answered ${status} to ${method} ${this.pathPrefix}${path.split('?')[0]}: ${serverText(body)}`,
      status,
      retryable: retryableStatus(status),
    };
  }

  private badJson(method: string, path: string, what: string): McpFailure {
    return { code: 'bad_json', message: `MCP ${this.ep.hostPort} answered ${method} ${this.pathPrefix}${path} with ${what}`, retryable: true };
  }

  /** GET orders/next: the order envelope as UNTRUSTED parsed JSON, or null when there is none (204). */
  async nextOrder(): Promise<NextOrderResult> {
    const q = new URLSearchParams({ site_id: this.ids.siteId, host_id: this.ids.hostId });
    const path = `/orders/next?${q.toString()}`;
    const r = await this.exchange('GET', path);
    if (!r.ok) return r;
    if (r.status === 204) return { ok: true, envelope: null };
    if (r.status !== 200) return { ok: false, error: this.statusFailure('GET', path, r.status, r.body) };
    const parsed = parseJson(r.body);
    if (!parsed.ok) return { ok: false, error: this.badJson('GET', '/orders/next', 'a body that is not JSON') };
    return { ok: true, envelope: parsed.value };
  }

  /**
   * What the MCP's receipt for `env` is worth: ok only for a receipt naming this bundle and this
   * envelope's hash, countersigned by a pinned key (when any is pinned). Anything else is a failed
   * delivery, retried later and raised as an alert by the agent: never an acknowledgement.
   */
  private receiptResult(env: Envelope, value: unknown, path: string): DeliveryResult {
    const expected = expectationOf(env);
    const raw = (value as { receipt?: unknown } | null)?.receipt;
    if (raw === undefined || expected === null) return { kind: 'retry', error: this.badJson('POST', path, 'no countersigned receipt').message, badReceipt: true };
    const c = checkReceipt(raw, expected, this.receiptKeys);
    if (!c.ok) return { kind: 'retry', error: `MCP ${this.ep.hostPort} answered POST ${this.pathPrefix}${path} with a receipt the agent refuses: ${c.message}`, badReceipt: true };
    return { kind: 'ok', receiptId: c.accepted.receipt.receipt_id, receipt: c.accepted };
  }

  /** POST evidence: ok with the receipt, retry on transport trouble, 5xx or a bad receipt, reject on a 4xx verdict. */
  async postEvidence(envelope: Envelope, budget?: AbortSignal): Promise<DeliveryResult> {
    const r = await this.exchange('POST', '/evidence', JSON.stringify(envelope), budget);
    if (!r.ok) return { kind: 'retry', error: r.error.message };
    if (r.status === 200 || r.status === 201) {
      const parsed = parseJson(r.body);
      return parsed.ok ? this.receiptResult(envelope, parsed.value, '/evidence') : { kind: 'retry', error: this.badJson('POST', '/evidence', 'a body that is not JSON').message };
    }
    const failure = this.statusFailure('POST', '/evidence', r.status, r.body);
    if (r.status >= 400 && r.status < 500 && !failure.retryable) return { kind: 'reject', reason: `HTTP ${r.status}: ${serverText(r.body)}` };
    return { kind: 'retry', error: failure.message };
  }

  /**
   * POST evidence/batch, one result per envelope in order. A whole-batch refusal (4xx) is never
   * applied to every envelope: those are posted one by one so each gets its own verdict. An MCP
   * without the batch endpoint (404/405) is served by single posts, and asked again after
   * batchRetryAfterMs (it may have been upgraded, or the 404 came from a proxy's bad minute).
   * `budget` aborts the exchange in flight: the cycle's flush budget is spent.
   */
  async postEvidenceBatch(envelopes: Envelope[], budget?: AbortSignal): Promise<DeliveryResult[]> {
    const results: DeliveryResult[] = [];
    for (const batch of chunk(envelopes)) {
      results.push(...(await this.postOneBatch(batch.envelopes, batch.body, budget)));
    }
    return results;
  }

  private async postOneBatch(envelopes: Envelope[], body: string, budget?: AbortSignal): Promise<DeliveryResult[]> {
    if (this.clock() < this.batchUnsupportedUntil || envelopes.length === 1) return this.postSingles(envelopes, budget);
    const r = await this.exchange('POST', '/evidence/batch', body, budget);
    if (!r.ok) return envelopes.map(() => ({ kind: 'retry', error: r.error.message }));
    if (r.status === 404 || r.status === 405) {
      this.batchUnsupportedUntil = this.clock() + this.batchRetryAfterMs;
      return this.postSingles(envelopes, budget);
    }
    if (r.status !== 200) {
      const failure = this.statusFailure('POST', '/evidence/batch', r.status, r.body);
      if (failure.retryable) return envelopes.map(() => ({ kind: 'retry', error: failure.message }));
      return this.postSingles(envelopes, budget);
    }
    this.batchUnsupportedUntil = 0;
    const parsed = parseJson(r.body);
    const items = parsed.ok ? (parsed.value as { results?: unknown } | null)?.results : undefined;
    if (!Array.isArray(items) || items.length !== envelopes.length) {
      const error = this.badJson('POST', '/evidence/batch', `no results list matching the ${envelopes.length} envelopes sent`).message;
      return envelopes.map(() => ({ kind: 'retry', error }));
    }
    return items.map((item: unknown, i): DeliveryResult => {
      const e = item as { index?: unknown; error?: unknown; receipt?: unknown; receipt_id?: unknown } | null;
      // A bare receipt_id (no countersigned receipt) is a receipt the agent refuses, not an unreadable result.
      if (e && typeof e === 'object' && (e.receipt !== undefined || e.receipt_id !== undefined)) return this.receiptResult(envelopes[i]!, e, '/evidence/batch');
      if (e && e.index === i && typeof e.error === 'string') return { kind: 'reject', reason: `MCP refused: ${oneLine(e.error)}` };
      return { kind: 'retry', error: this.badJson('POST', '/evidence/batch', `an unreadable result at index ${i}`).message };
    });
  }

  private async postSingles(envelopes: Envelope[], budget?: AbortSignal): Promise<DeliveryResult[]> {
    const results: DeliveryResult[] = new Array(envelopes.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < envelopes.length) {
        const i = next++;
        results[i] = await this.postEvidence(envelopes[i]!, budget);
      }
    };
    await Promise.all(Array.from({ length: Math.min(SINGLE_POST_CONCURRENCY, envelopes.length) }, worker));
    return results;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
