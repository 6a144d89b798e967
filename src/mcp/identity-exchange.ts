import { HttpAgent, oneLine } from '../common/index.js';
import { readCapped } from './capped-body.js';
import { classifyTransportError, type Endpoint } from './failure.js';
import { parseMcpUrl, pinnedTls } from './target.js';
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
  const ep: Endpoint = {
    hostPort: target.hostPort,
    hostname: target.hostname,
    caFile: req.caFile,
    clientCertFile: req.client?.certFile ?? '(none: enrollment)',
    clientCertNotAfter: req.client?.notAfter ?? new Date(8.64e15),
    connectTimeoutMs: timeoutMs,
    headersTimeoutMs: timeoutMs,
    bodyTimeoutMs: timeoutMs,
    requestTimeoutMs: timeoutMs,
  };
  const agent = new HttpAgent({ connect: pinnedTls(target, req.ca, timeoutMs, req.client), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const path = `${target.pathPrefix}${req.path}`;
  try {
    const res = await agent.request({
      origin: target.origin,
      path,
      method: req.method,
      headers: req.body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      ...(req.body === undefined ? {} : { body: JSON.stringify(req.body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const read = await readCapped(res.body, MAX_RESPONSE);
    if (!read.ok) {
      return { ok: false, error: { code: 'too_large', message: `${ep.hostPort} answered ${req.method} ${path} with more than ${MAX_RESPONSE} bytes`, retryable: true } };
    }
    const text = read.bytes.toString('utf8');
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // left null: the caller names what it expected
    }
    const date = Date.parse(String(res.headers['date'] ?? ''));
    return { ok: true, status: res.statusCode, json, text: oneLine(text, 300), serverDate: Number.isNaN(date) ? null : date };
  } catch (e) {
    return { ok: false, error: classifyTransportError(e, ep) };
  } finally {
    await agent.close();
  }
}
