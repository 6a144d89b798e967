import { AgentError } from '../common/index.js';

/** Where the MCP is, from mcpUrl: the origin every connection to it dials. */
export interface McpTarget {
  readonly origin: string;
  /** A path prefix of mcpUrl, kept (`https://mcp.example/api` → `/api/orders/next`). */
  readonly pathPrefix: string;
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
  };
}
