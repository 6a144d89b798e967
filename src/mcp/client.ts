import { oneLine } from '../common/index.js';
import { envelopeHash, type Envelope, type PublicKey } from '../crypto/index.js';
import { HttpsClient, isRetryableStatus, type HttpsTimeouts } from '../delivery/index.js';
import { checkReceipt, claimedBundle, type ReceiptExpectation } from '../evidence/index.js';
import type { DeliveryResult } from '../queue/index.js';
import { parseMcpUrl } from './target.js';
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
    private readonly http: HttpsClient,
    private readonly pathPrefix: string,
    private readonly ids: { siteId: string; hostId: string },
    private readonly receiptKeys: readonly PublicKey[],
    private readonly clock: () => number,
    private readonly batchRetryAfterMs: number,
  ) {}

  /** Reads the TLS files now; a missing or mismatched file is an AgentError('mcp_config') naming it. */
  static create(opts: McpClientOptions): McpClient {
    const target = parseMcpUrl(opts.mcpUrl);
    const tls = loadTlsMaterial(opts);
    const timeouts: HttpsTimeouts = {
      connectMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      headersMs: opts.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs,
      bodyMs: opts.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
      requestMs: opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    };
    const http = new HttpsClient({
      origin: target.origin,
      // Only caFile is trusted for the MCP: never Node's roots, the system's or NODE_EXTRA_CA_CERTS.
      trust: { ca: tls.ca, caFile: opts.caFile },
      client: { cert: tls.cert, key: tls.key, certFile: opts.clientCertFile, notAfter: tls.clientCertNotAfter },
      timeouts,
      maxResponseBytes: opts.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
      connections: SINGLE_POST_CONCURRENCY,
      keepAliveMaxMs: 60_000,
    });
    return new McpClient(
      http,
      target.pathPrefix,
      { siteId: opts.siteId, hostId: opts.hostId },
      opts.receiptKeys ?? [],
      opts.now ?? Date.now,
      opts.batchRetryAfterMs ?? BATCH_RETRY_AFTER_MS,
    );
  }

  private async exchange(method: 'GET' | 'POST', path: string, body?: string, budget?: AbortSignal): Promise<Exchange> {
    if (budget?.aborted) return { ok: false, error: budgetSpent(method, `${this.pathPrefix}${path}`) };
    const r = await this.http.request({
      method,
      path: `${this.pathPrefix}${path}`,
      headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body }),
      ...(budget ? { signal: budget } : {}),
      shownAs: `${method} ${this.pathPrefix}${path.split('?')[0]}`,
    });
    if (r.ok) return { ok: true, status: r.response.status, body: r.response.body };
    if (budget?.aborted) return { ok: false, error: budgetSpent(method, `${this.pathPrefix}${path}`) };
    // Transport trouble and an oversized answer may both pass: a later try is worth it.
    return { ok: false, error: { ...r.failure, retryable: true } };
  }

  private statusFailure(method: string, path: string, status: number, body: Buffer): McpFailure {
    return {
      code: 'http_status',
      message: `MCP ${this.http.endpoint} answered ${status} to ${method} ${this.pathPrefix}${path.split('?')[0]}: ${serverText(body)}`,
      status,
      retryable: isRetryableStatus(status),
    };
  }

  private badJson(method: string, path: string, what: string): McpFailure {
    return { code: 'bad_json', message: `MCP ${this.http.endpoint} answered ${method} ${this.pathPrefix}${path} with ${what}`, retryable: true };
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
    if (!c.ok)
      return { kind: 'retry', error: `MCP ${this.http.endpoint} answered POST ${this.pathPrefix}${path} with a receipt the agent refuses: ${c.message}`, badReceipt: true };
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
    const results = new Array<DeliveryResult>(envelopes.length);
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
    await this.http.close();
  }
}
