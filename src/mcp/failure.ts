import type { McpFailure } from './types.js';

/** What a failure message needs to name: where we connected, with which trust files. */
export interface Endpoint {
  /** host:port as dialled. */
  readonly hostPort: string;
  readonly hostname: string;
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientCertNotAfter: Date;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly requestTimeoutMs: number;
}

const NOT_OUR_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
]);

const DNS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ERR_STREAM_PREMATURE_CLOSE']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);

interface Found {
  readonly code: string;
  readonly message: string;
  readonly reason?: string;
  readonly name: string;
  /** Application bytes read on the connection, when undici reports it. */
  readonly bytesRead?: number;
}

/** Every coded error in the chain: undici wraps (cause) and happy eyeballs aggregates (errors). */
function collect(e: unknown, out: Found[] = [], depth = 0): Found[] {
  if (depth > 6 || typeof e !== 'object' || e === null) return out;
  const x = e as { code?: unknown; message?: unknown; reason?: unknown; name?: unknown; cause?: unknown; errors?: unknown; socket?: { bytesRead?: unknown } };
  out.push({
    code: typeof x.code === 'string' ? x.code : '',
    message: typeof x.message === 'string' ? x.message : '',
    name: typeof x.name === 'string' ? x.name : '',
    ...(typeof x.reason === 'string' ? { reason: x.reason } : {}),
    ...(typeof x.socket?.bytesRead === 'number' ? { bytesRead: x.socket.bytesRead } : {}),
  });
  collect(x.cause, out, depth + 1);
  if (Array.isArray(x.errors)) for (const inner of x.errors) collect(inner, out, depth + 1);
  return out;
}

/** One line, printable, bounded: for text that came from outside (server bodies, error messages). */
export function oneLine(text: string, max = 200): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

function clientCertExpiry(ep: Endpoint): string {
  return ep.clientCertNotAfter.getTime() < Date.now() ? ` (it expired ${ep.clientCertNotAfter.toISOString()})` : '';
}

function tlsReason(f: Found, ep: Endpoint): string | null {
  if (NOT_OUR_CA.has(f.code)) return `server certificate is not signed by the CA in ${ep.caFile}`;
  if (f.code === 'CERT_HAS_EXPIRED') return 'server certificate has expired';
  if (f.code === 'CERT_NOT_YET_VALID') return 'server certificate is not valid yet (check the clock)';
  if (f.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `server certificate is not valid for ${ep.hostname}${f.reason ? `: ${f.reason}` : ''}`;
  if (f.code === 'INVALID_PURPOSE') return 'server certificate is not meant for TLS servers (extendedKeyUsage)';
  if (CLIENT_CERT_REFUSED.has(f.code)) {
    return f.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'
      ? 'server requires a client certificate and got none it accepts'
      : `server refused the client certificate in ${ep.clientCertFile}${clientCertExpiry(ep)}`;
  }
  // TLS 1.3 servers (Node among them) may verify the client cert after the handshake and just
  // close: a fresh connection that ends before one byte of response means exactly that.
  if (f.code === 'UND_ERR_SOCKET' && f.bytesRead === 0) {
    return `server closed the connection right after the handshake without answering; it most likely refused the client certificate in ${ep.clientCertFile}${clientCertExpiry(ep)}`;
  }
  if (f.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || f.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return 'the server does not speak TLS on this port';
  if (f.code.startsWith('ERR_SSL_') || f.code.startsWith('ERR_TLS_') || f.code.startsWith('CERT_')) return `handshake failed: ${oneLine(f.message, 120)}`;
  return null;
}

/** Turns a transport error into one clear line and a retry verdict. */
export function classifyTransportError(e: unknown, ep: Endpoint): McpFailure {
  const chain = collect(e);
  for (const f of chain) {
    const tls = tlsReason(f, ep);
    if (tls) return { code: 'tls', message: `TLS to ${ep.hostPort} failed: ${tls} (${f.code})`, retryable: true };
  }
  for (const f of chain) {
    if (DNS.has(f.code)) return { code: 'dns', message: `cannot resolve ${ep.hostname}: ${f.code}`, retryable: true };
    if (UNREACHABLE.has(f.code)) {
      const what = f.code === 'ECONNREFUSED' ? 'refused' : 'unreachable';
      return { code: 'refused', message: `connection to ${ep.hostPort} ${what} (${f.code})`, retryable: true };
    }
    if (f.code === 'UND_ERR_CONNECT_TIMEOUT' || f.code === 'ETIMEDOUT') {
      return { code: 'timeout', message: `connecting to ${ep.hostPort} timed out after ${ep.connectTimeoutMs} ms (${f.code})`, retryable: true };
    }
    if (f.code === 'UND_ERR_HEADERS_TIMEOUT') {
      return { code: 'timeout', message: `${ep.hostPort} sent no response headers within ${ep.headersTimeoutMs} ms (${f.code})`, retryable: true };
    }
    if (f.code === 'UND_ERR_BODY_TIMEOUT') {
      return { code: 'timeout', message: `${ep.hostPort} stalled the response body for ${ep.bodyTimeoutMs} ms (${f.code})`, retryable: true };
    }
    if (f.name === 'TimeoutError') {
      return { code: 'timeout', message: `request to ${ep.hostPort} did not complete within ${ep.requestTimeoutMs} ms`, retryable: true };
    }
    if (RESET.has(f.code)) return { code: 'reset', message: `connection to ${ep.hostPort} was reset (${f.code})`, retryable: true };
  }
  const first = chain[0];
  const detail = first ? `${oneLine(first.message, 160)}${first.code ? ` (${first.code})` : ''}` : oneLine(String(e), 160);
  return { code: 'reset', message: `request to ${ep.hostPort} failed: ${detail}`, retryable: true };
}
