import { oneLine } from '../common/index.js';

/** One error of a chain, with what the describer reads from it. */
interface ChainedError {
  readonly code: string;
  readonly message: string;
  readonly name: string;
  readonly reason?: string;
  /** Application bytes read on the connection, when undici reports it. */
  readonly bytesRead?: number;
}

/** Every error in the chain, outermost first: undici and tls wrap (cause), happy eyeballs aggregates (errors). */
function errorChain(e: unknown, out: ChainedError[] = [], depth = 0): ChainedError[] {
  if (depth > 6 || typeof e !== 'object' || e === null) return out;
  const x = e as { code?: unknown; message?: unknown; reason?: unknown; name?: unknown; cause?: unknown; errors?: unknown; socket?: { bytesRead?: unknown } };
  out.push({
    code: typeof x.code === 'string' ? x.code : '',
    message: typeof x.message === 'string' ? x.message : '',
    name: typeof x.name === 'string' ? x.name : '',
    ...(typeof x.reason === 'string' ? { reason: x.reason } : {}),
    ...(typeof x.socket?.bytesRead === 'number' ? { bytesRead: x.socket.bytesRead } : {}),
  });
  errorChain(x.cause, out, depth + 1);
  if (Array.isArray(x.errors)) for (const inner of x.errors) errorChain(inner, out, depth + 1);
  return out;
}

/** OpenSSL verification codes meaning the server's certificate does not chain to the trusted CA. */
const UNTRUSTED_CERT_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/** TLS alerts a server sends when it will not take the client certificate. */
const CLIENT_CERT_REFUSED: ReadonlySet<string> = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
]);

/** getaddrinfo failures: the name did not resolve. */
const DNS_FAILURE_CODES: ReadonlySet<string> = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);

/** No connection: refused, or no route to the peer. */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);

/** The connection broke after it was made. */
const RESET_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export type TransportFailureCode = 'tls' | 'dns' | 'refused' | 'timeout' | 'reset';

/** A connection that failed, as one line for a log, a queue row or the status command. */
export interface TransportFailure {
  readonly code: TransportFailureCode;
  readonly message: string;
}

/** What a failure message names: the peer, what was trusted, and the limits that were hit. */
export interface Peer {
  /** The peer as dialled (`host:port`, `tcp://host:port`). */
  readonly name: string;
  /** Its host name (no brackets around an IPv6 literal), for resolution and certificate-name failures. */
  readonly hostname: string;
  /** Which CA the server certificate had to chain to: `the CA in /etc/ca.pem`, `a public CA Node trusts`. */
  readonly trust: string;
  /** The client certificate presented (mTLS), to explain a server's refusal of it. */
  readonly clientCert?: { readonly file: string; readonly notAfter: Date };
  readonly timeouts?: { readonly connectMs?: number; readonly headersMs?: number; readonly bodyMs?: number; readonly requestMs?: number };
}

function clientCertExpiry(cert: { readonly notAfter: Date }): string {
  return cert.notAfter.getTime() < Date.now() ? ` (it expired ${cert.notAfter.toISOString()})` : '';
}

function tlsReason(f: ChainedError, peer: Peer): string | null {
  if (UNTRUSTED_CERT_CODES.has(f.code)) return `server certificate is not signed by ${peer.trust}`;
  if (f.code === 'CERT_HAS_EXPIRED') return 'server certificate has expired';
  if (f.code === 'CERT_NOT_YET_VALID') return 'server certificate is not valid yet (check the clock)';
  if (f.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `server certificate is not valid for ${peer.hostname}${f.reason ? `: ${f.reason}` : ''}`;
  if (f.code === 'INVALID_PURPOSE') return 'server certificate is not meant for TLS servers (extendedKeyUsage)';
  if (f.code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED') return 'server requires a client certificate and got none it accepts';
  const cert = peer.clientCert;
  if (cert && CLIENT_CERT_REFUSED.has(f.code)) return `server refused the client certificate in ${cert.file}${clientCertExpiry(cert)}`;
  // TLS 1.3 servers (Node among them) may verify the client cert after the handshake and just
  // close: a fresh connection that ends before one byte of response means exactly that.
  if (cert && f.code === 'UND_ERR_SOCKET' && f.bytesRead === 0) {
    return `server closed the connection right after the handshake without answering; it most likely refused the client certificate in ${cert.file}${clientCertExpiry(cert)}`;
  }
  if (f.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || f.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return 'the server does not speak TLS on this port';
  if (f.code.startsWith('ERR_SSL_') || f.code.startsWith('ERR_TLS_') || f.code.startsWith('CERT_')) return `handshake failed: ${oneLine(f.message, 120)}`;
  return null;
}

function within(ms: number | undefined, phrase: string): string {
  return ms === undefined ? '' : ` ${phrase} ${ms} ms`;
}

/**
 * A transport error (from undici, node:net or node:tls) as one line naming the peer and what
 * failed, e.g. `TLS to siem.example:6514 failed: server certificate is not signed by the CA in
 * /etc/siem-ca.pem (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`. Every such failure may pass on a later try.
 */
export function describeTransportError(e: unknown, peer: Peer): TransportFailure {
  const chain = errorChain(e);
  for (const f of chain) {
    const tls = tlsReason(f, peer);
    if (tls) return { code: 'tls', message: `TLS to ${peer.name} failed: ${tls} (${f.code})` };
  }
  const t = peer.timeouts ?? {};
  for (const f of chain) {
    if (DNS_FAILURE_CODES.has(f.code)) return { code: 'dns', message: `cannot resolve ${peer.hostname}: ${f.code}` };
    if (UNREACHABLE_CODES.has(f.code)) {
      const what = f.code === 'ECONNREFUSED' ? 'refused' : 'unreachable';
      return { code: 'refused', message: `connection to ${peer.name} ${what} (${f.code})` };
    }
    if (f.code === 'UND_ERR_CONNECT_TIMEOUT' || f.code === 'ETIMEDOUT') {
      return { code: 'timeout', message: `connecting to ${peer.name} timed out${within(t.connectMs, 'after')} (${f.code})` };
    }
    if (f.code === 'UND_ERR_HEADERS_TIMEOUT') {
      return { code: 'timeout', message: `${peer.name} sent no response headers${within(t.headersMs, 'within')} (${f.code})` };
    }
    if (f.code === 'UND_ERR_BODY_TIMEOUT') {
      return { code: 'timeout', message: `${peer.name} stalled the response body${within(t.bodyMs, 'for')} (${f.code})` };
    }
    if (f.name === 'TimeoutError') return { code: 'timeout', message: `request to ${peer.name} did not complete${within(t.requestMs, 'within')}` };
    if (RESET_CODES.has(f.code)) return { code: 'reset', message: `connection to ${peer.name} was reset (${f.code})` };
  }
  const first = chain[0];
  const detail = first ? `${oneLine(first.message, 160)}${first.code ? ` (${first.code})` : ''}` : oneLine(String(e), 160);
  return { code: 'reset', message: `connection to ${peer.name} failed: ${detail}` };
}
