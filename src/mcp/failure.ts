import { DNS_FAILURE_CODES, UNREACHABLE_CODES, UNTRUSTED_CERT_CODES, errorChain, oneLine, type ChainedError } from '../common/index.js';
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

const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
]);

const RESET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ERR_STREAM_PREMATURE_CLOSE']);

function clientCertExpiry(ep: Endpoint): string {
  return ep.clientCertNotAfter.getTime() < Date.now() ? ` (it expired ${ep.clientCertNotAfter.toISOString()})` : '';
}

function tlsReason(f: ChainedError, ep: Endpoint): string | null {
  if (UNTRUSTED_CERT_CODES.has(f.code)) return `server certificate is not signed by the CA in ${ep.caFile}`;
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
  const chain = errorChain(e);
  for (const f of chain) {
    const tls = tlsReason(f, ep);
    if (tls) return { code: 'tls', message: `TLS to ${ep.hostPort} failed: ${tls} (${f.code})`, retryable: true };
  }
  for (const f of chain) {
    if (DNS_FAILURE_CODES.has(f.code)) return { code: 'dns', message: `cannot resolve ${ep.hostname}: ${f.code}`, retryable: true };
    if (UNREACHABLE_CODES.has(f.code)) {
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
