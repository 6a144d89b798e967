import { isIP } from 'node:net';

/** Where syslog goes: `tcp://host:port` (RFC 6587 octet counting) or `tls://host:port` (RFC 5425). */
export interface SyslogTarget {
  readonly protocol: 'tcp' | 'tls';
  /** A DNS name, an IPv4 address, or an IPv6 address without brackets. */
  readonly host: string;
  readonly port: number;
}

/** A DNS host name: dot-separated labels of letters, digits and inner dashes, at most 253 characters. */
export const DNS_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const FORM = 'must be tcp://host:port or tls://host:port';

export function parseSyslogTarget(text: string): { ok: true; target: SyslogTarget } | { ok: false; message: string } {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text)?.[1]?.toLowerCase();
  if (scheme === 'udp') {
    return {
      ok: false,
      message:
        'udp:// is not supported: UDP syslog has no acknowledgement, no ordering and no TLS, so evidence could be lost or read in transit without anyone knowing; use tcp://host:port or tls://host:port',
    };
  }
  if (scheme !== 'tcp' && scheme !== 'tls') return { ok: false, message: FORM };
  const m = /^(?:tcp|tls):\/\/(\[([0-9A-Fa-f:.]+)\]|[^\s/:@[\]?#]+):(\d{1,5})$/i.exec(text);
  if (!m) return { ok: false, message: `${FORM} (an IPv6 address in brackets; no path, user or query)` };
  const host = m[2] ?? m[1]!;
  if (m[2] !== undefined ? isIP(host) !== 6 : !(isIP(host) === 4 || DNS_NAME.test(host))) {
    return { ok: false, message: `${FORM}: "${host}" is not a host name or IP address` };
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65_535) return { ok: false, message: `${FORM}: port ${m[3]} is outside 1-65535` };
  return { ok: true, target: { protocol: scheme, host, port } };
}
