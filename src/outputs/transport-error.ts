/** One printable, bounded line of text that came from outside (a server body, an error message). */
export function oneLine(text: string, max = 200): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

interface Coded {
  readonly code: string;
  readonly message: string;
  readonly name: string;
}

/** Every error in the chain: undici and tls wrap (cause), happy eyeballs aggregates (errors). */
function chain(e: unknown, out: Coded[] = [], depth = 0): Coded[] {
  if (depth > 6 || typeof e !== 'object' || e === null) return out;
  const x = e as { code?: unknown; message?: unknown; name?: unknown; cause?: unknown; errors?: unknown };
  out.push({ code: typeof x.code === 'string' ? x.code : '', message: typeof x.message === 'string' ? x.message : '', name: typeof x.name === 'string' ? x.name : '' });
  chain(x.cause, out, depth + 1);
  if (Array.isArray(x.errors)) for (const inner of x.errors) chain(inner, out, depth + 1);
  return out;
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

/**
 * A transport failure as one line naming the peer and what failed, e.g.
 * `TLS to siem.example:6514 failed: certificate not signed by the trusted CA (/etc/siem-ca.pem)`.
 * `trust` says which CA was trusted, for the message.
 */
export function describeTransportError(e: unknown, peer: string, trust: string): string {
  const found = chain(e);
  for (const f of found) {
    if (NOT_OUR_CA.has(f.code)) return `TLS to ${peer} failed: server certificate is not signed by ${trust} (${f.code})`;
    if (f.code === 'CERT_HAS_EXPIRED') return `TLS to ${peer} failed: server certificate has expired (${f.code})`;
    if (f.code === 'CERT_NOT_YET_VALID') return `TLS to ${peer} failed: server certificate is not valid yet, check the clock (${f.code})`;
    if (f.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS to ${peer} failed: server certificate does not name this host (${f.code})`;
    if (f.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || f.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return `TLS to ${peer} failed: the server does not speak TLS on this port (${f.code})`;
    if (f.code.startsWith('ERR_SSL_') || f.code.startsWith('ERR_TLS_')) return `TLS to ${peer} failed: ${oneLine(f.message, 120)} (${f.code})`;
  }
  for (const f of found) {
    if (f.code === 'ECONNREFUSED') return `connection to ${peer} refused (${f.code})`;
    if (['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN'].includes(f.code)) return `${peer} unreachable (${f.code})`;
    if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA'].includes(f.code)) return `cannot resolve ${peer} (${f.code})`;
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
