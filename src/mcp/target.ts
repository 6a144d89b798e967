import { isIP } from 'node:net';
import { AgentError } from '../common/index.js';

/** Where the MCP is, from mcpUrl: what every connection to it dials and names in its errors. */
export interface McpTarget {
  readonly origin: string;
  /** A path prefix of mcpUrl, kept (`https://mcp.example/api` → `/api/orders/next`). */
  readonly pathPrefix: string;
  /** Without the brackets of an IPv6 literal. */
  readonly hostname: string;
  /** host:port as dialled. */
  readonly hostPort: string;
}

export function parseMcpUrl(mcpUrl: string): McpTarget {
  let url: URL;
  try {
    url = new URL(mcpUrl);
  } catch {
    throw new AgentError('mcp_config', `mcpUrl ${JSON.stringify(mcpUrl)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw new AgentError('mcp_config', `mcpUrl ${url.origin} must be https`);
  if (url.username || url.password || url.search || url.hash) {
    throw new AgentError('mcp_config', 'mcpUrl must not carry credentials, a query or a fragment');
  }
  return {
    origin: url.origin,
    pathPrefix: url.pathname.replace(/\/+$/, ''),
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    hostPort: `${url.hostname}:${url.port || '443'}`,
  };
}

/** TLS options of a connection to the MCP: only `ca` is trusted, never Node's or the system's roots. */
export function pinnedTls(target: McpTarget, ca: Buffer, timeoutMs: number, client?: { cert: Buffer; key: Buffer }) {
  return {
    // Passing `ca` replaces Node's bundled and system roots: only this CA is trusted.
    ca,
    ...(client ? { cert: client.cert, key: client.key } : {}),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2' as const,
    timeout: timeoutMs,
    // SNI carries DNS names only (RFC 6066); an IP is checked against the cert's IP SANs.
    ...(isIP(target.hostname) ? {} : { servername: target.hostname }),
  };
}
