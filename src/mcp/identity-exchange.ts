import { oneLine } from '../common/index.js';
import { HttpsClient } from '../delivery/index.js';
import { parseMcpUrl } from './target.js';
import type { McpFailure } from './types.js';

/** One request of the identity lifecycle: enrollment (no client certificate yet), renewal, probe. */
export interface IdentityRequest {
  readonly mcpUrl: string;
  readonly ca: Buffer;
  readonly caFile: string;
  /** The client identity to present; absent for enrollment. */
  readonly client?: { readonly cert: Buffer; readonly key: Buffer; readonly certFile: string; readonly notAfter: Date };
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: unknown;
  readonly timeoutMs?: number;
}

export type IdentityResponse =
  | { readonly ok: true; readonly status: number; readonly json: unknown; readonly text: string; readonly serverDate: number | null }
  | { readonly ok: false; readonly error: McpFailure };

const MAX_RESPONSE = 64 * 1024;

/**
 * A single exchange over a fresh connection, the CA pinned from caFile exactly as the agent's
 * client does (no system roots). Never throws for a failed exchange: the failure is one line.
 */
export async function identityExchange(req: IdentityRequest): Promise<IdentityResponse> {
  const target = parseMcpUrl(req.mcpUrl);
  const timeoutMs = req.timeoutMs ?? 30_000;
  const http = new HttpsClient({
    origin: target.origin,
    trust: { ca: req.ca, caFile: req.caFile },
    ...(req.client ? { client: { cert: req.client.cert, key: req.client.key, certFile: req.client.certFile, notAfter: req.client.notAfter } } : {}),
    timeouts: { connectMs: timeoutMs, headersMs: timeoutMs, bodyMs: timeoutMs, requestMs: timeoutMs },
    maxResponseBytes: MAX_RESPONSE,
    connections: 1,
  });
  const path = `${target.pathPrefix}${req.path}`;
  try {
    const r = await http.request({
      method: req.method,
      path,
      headers: req.body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      ...(req.body === undefined ? {} : { body: JSON.stringify(req.body) }),
      shownAs: `${req.method} ${path}`,
    });
    if (!r.ok) return { ok: false, error: { ...r.failure, retryable: true } };
    const text = r.response.body.toString('utf8');
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // left null: the caller names what it expected
    }
    const date = Date.parse(String(r.response.headers['date'] ?? ''));
    return { ok: true, status: r.response.status, json, text: oneLine(text, 300), serverDate: Number.isNaN(date) ? null : date };
  } finally {
    await http.close();
  }
}
