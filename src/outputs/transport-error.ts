import { DNS_FAILURE_CODES, UNREACHABLE_CODES, UNTRUSTED_CERT_CODES, errorChain, oneLine } from '../common/index.js';

/**
 * A transport failure as one line naming the peer and what failed, e.g.
 * `TLS to siem.example:6514 failed: certificate not signed by the trusted CA (/etc/siem-ca.pem)`.
 * `trust` says which CA was trusted, for the message.
 */
export function describeTransportError(e: unknown, peer: string, trust: string): string {
  const found = errorChain(e);
  for (const f of found) {
    if (UNTRUSTED_CERT_CODES.has(f.code)) return `TLS to ${peer} failed: server certificate is not signed by ${trust} (${f.code})`;
    if (f.code === 'CERT_HAS_EXPIRED') return `TLS to ${peer} failed: server certificate has expired (${f.code})`;
    if (f.code === 'CERT_NOT_YET_VALID') return `TLS to ${peer} failed: server certificate is not valid yet, check the clock (${f.code})`;
    if (f.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS to ${peer} failed: server certificate does not name this host (${f.code})`;
    if (f.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || f.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return `TLS to ${peer} failed: the server does not speak TLS on this port (${f.code})`;
    if (f.code.startsWith('ERR_SSL_') || f.code.startsWith('ERR_TLS_')) return `TLS to ${peer} failed: ${oneLine(f.message, 120)} (${f.code})`;
  }
  for (const f of found) {
    if (f.code === 'ECONNREFUSED') return `connection to ${peer} refused (${f.code})`;
    if (UNREACHABLE_CODES.has(f.code)) return `${peer} unreachable (${f.code})`;
    if (DNS_FAILURE_CODES.has(f.code)) return `cannot resolve ${peer} (${f.code})`;
    if (['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'].includes(f.code) || f.name === 'TimeoutError') {
      return `${peer} timed out (${f.code || f.name})`;
    }
    if (['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_PREMATURE_CLOSE'].includes(f.code)) {
      return `connection to ${peer} was lost (${f.code})`;
    }
  }
  const first = found[0];
  return first ? `${peer}: ${oneLine(first.message, 160)}${first.code ? ` (${first.code})` : ''}` : `${peer}: ${oneLine(String(e), 160)}`;
}
