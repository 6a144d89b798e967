/** One error of a chain, with what the transport classifiers read from it. */
export interface ChainedError {
  readonly code: string;
  readonly message: string;
  readonly name: string;
  readonly reason?: string;
  /** Application bytes read on the connection, when undici reports it. */
  readonly bytesRead?: number;
}

/** Every error in the chain, outermost first: undici and tls wrap (cause), happy eyeballs aggregates (errors). */
export function errorChain(e: unknown, out: ChainedError[] = [], depth = 0): ChainedError[] {
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
export const UNTRUSTED_CERT_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);

/** getaddrinfo failures: the name did not resolve. */
export const DNS_FAILURE_CODES: ReadonlySet<string> = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA']);

/** No connection: refused, or no route to the peer. */
export const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);
