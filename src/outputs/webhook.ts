import { AGENT_VERSION, AgentError, oneLine } from '../common/index.js';
import { HttpsClient, isRetryableStatus, type HttpsResponse } from '../delivery/index.js';
import type { DeliveryResult, OutboxItem } from '../queue/index.js';
import { decodeQueuedBundle } from './queued-bundle.js';
import { webhookPayload } from './webhook-payload.js';
import { signWebhook } from './webhook-signature.js';

export interface WebhookSinkOptions {
  /** https URL of the RMM/PSA endpoint. Its path is never logged: some RMMs put a token there. */
  readonly url: string;
  /** HMAC key (the decoded `whsec_` secret). */
  readonly secret: Uint8Array;
  /** Trust anchors for the receiver. Default: Node's bundled public roots plus NODE_EXTRA_CA_CERTS. */
  readonly ca?: string | Buffer;
  /** Where `ca` came from (webhookCaFile), named in TLS failure messages. */
  readonly caFile?: string;
  /** TCP connect plus TLS handshake. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Request sent → response headers. Default 15 s. */
  readonly headersTimeoutMs?: number;
  /** Longest silence inside the response body. Default 15 s. */
  readonly bodyTimeoutMs?: number;
  /** Whole exchange. Default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Response bytes read at most (only for a receipt id or an error text). Default 64 KiB. */
  readonly maxResponseBytes?: number;
  /** Wall clock in ms for `webhook-timestamp`: receivers compare it with their own clock. */
  readonly now?: () => number;
}

const DEFAULTS = { connectTimeoutMs: 10_000, headersTimeoutMs: 15_000, bodyTimeoutMs: 15_000, requestTimeoutMs: 30_000, maxResponseBytes: 64 * 1024 };

/** The receiver's own id for the message when it sends one (`id` or `receipt_id`), else null. */
function receiverId(body: Buffer): string | null {
  try {
    const v = JSON.parse(body.toString('utf8')) as { id?: unknown; receipt_id?: unknown } | null;
    const id = typeof v?.receipt_id === 'string' ? v.receipt_id : typeof v?.id === 'string' ? v.id : null;
    return id !== null && /^[\x21-\x7e]{1,256}$/.test(id) ? id : null;
  } catch {
    return null;
  }
}

/**
 * RMM webhook per the Standard Webhooks spec: one signed POST per bundle, `webhook-id` = bundle_id
 * so receivers deduplicate retries, a fresh `webhook-timestamp` and signature on every attempt.
 * 2xx delivers; 408, 429, 5xx and transport failures retry from the queue; any other status is a
 * verdict on the message and dead-letters it (redirects are not followed).
 */
export class WebhookSink {
  private readonly url: URL;
  private readonly http: HttpsClient;
  private readonly now: () => number;

  constructor(private readonly opts: WebhookSinkOptions) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new AgentError('webhook_config', 'rmmWebhookUrl is not a URL');
    }
    if (url.protocol !== 'https:') throw new AgentError('webhook_config', `rmmWebhookUrl for ${url.host} must be https`);
    if (url.username || url.password) throw new AgentError('webhook_config', `rmmWebhookUrl for ${url.host} must not carry a user or password`);
    if (opts.secret.length === 0) throw new AgentError('webhook_config', 'the webhook secret is empty');
    this.url = url;
    this.now = opts.now ?? Date.now;
    this.http = new HttpsClient({
      origin: url.origin,
      // Pinned to webhookCaFile when set; Node's public roots (plus NODE_EXTRA_CA_CERTS) otherwise.
      trust: opts.ca === undefined ? 'node-roots' : { ca: opts.ca, caFile: opts.caFile ?? 'webhookCaFile' },
      timeouts: {
        connectMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
        headersMs: opts.headersTimeoutMs ?? DEFAULTS.headersTimeoutMs,
        bodyMs: opts.bodyTimeoutMs ?? DEFAULTS.bodyTimeoutMs,
        requestMs: opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      },
      maxResponseBytes: opts.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
      connections: 1,
    });
  }

  /**
   * Deliver in queue order, one POST at a time. The first retryable failure stops the batch: the
   * items after it are not sent and come back as retry, so nothing overtakes it.
   */
  readonly deliver = async (items: readonly OutboxItem[]): Promise<DeliveryResult[]> => {
    const results: DeliveryResult[] = [];
    for (const item of items) {
      const r = await this.send(item);
      results.push(r);
      if (r.kind === 'retry') {
        while (results.length < items.length) results.push({ kind: 'retry', error: `not sent: waiting behind bundle ${item.bundleId}` });
        break;
      }
    }
    return results;
  };

  async send(item: OutboxItem): Promise<DeliveryResult> {
    const decoded = decodeQueuedBundle(item.body);
    if (!decoded.ok) return { kind: 'reject', reason: decoded.reason };
    const body = JSON.stringify(webhookPayload(decoded.bundle));
    const msgId = decoded.bundle.bundle_id;
    const timestamp = Math.floor(this.now() / 1000);
    const r = await this.http.request({
      method: 'POST',
      // The path and query are sent, never shown: some RMMs put a token there.
      path: `${this.url.pathname}${this.url.search}`,
      headers: {
        'content-type': 'application/json',
        'user-agent': `compliance-agent/${AGENT_VERSION}`,
        'webhook-id': msgId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(this.opts.secret, msgId, timestamp, body),
      },
      body,
      shownAs: 'POST',
    });
    if (r.ok) return this.verdict(r.response, msgId);
    // The status line carries the receiver's verdict; a reply cut short (over the cap, a reset
    // mid-body) only shortens the receipt id or the error text read from it.
    if (r.response) return this.verdict(r.response, msgId);
    return { kind: 'retry', error: `webhook POST failed: ${r.failure.message}` };
  }

  private verdict(res: HttpsResponse, msgId: string): DeliveryResult {
    const peer = this.http.endpoint;
    if (res.status >= 200 && res.status < 300) return { kind: 'ok', receiptId: receiverId(res.body) ?? msgId };
    const said = oneLine(res.body.toString('utf8')) || '(no body)';
    if (isRetryableStatus(res.status)) return { kind: 'retry', error: `webhook ${peer} answered ${res.status}: ${said}` };
    const redirect = res.status >= 300 && res.status < 400 ? ' (redirects are not followed; correct rmmWebhookUrl)' : '';
    return { kind: 'reject', reason: `webhook ${peer} refused with ${res.status}${redirect}: ${said}` };
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}
