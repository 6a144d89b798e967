import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import { McpClient } from '../../src/mcp/index.js';

/**
 * Run with NODE_EXTRA_CA_CERTS naming the MCP's real CA. Control: a plain undici client with the
 * default trust store reaches the MCP. Then the McpClient, given another caFile, must not.
 */
const [url, caFile, clientCertFile, clientKeyFile] = process.argv.slice(2) as [string, string, string, string];
const plain = new Agent({ connect: { cert: readFileSync(clientCertFile), key: readFileSync(clientKeyFile) } });
const control = await plain.request({ origin: url, path: '/orders/next?site_id=s&host_id=h', method: 'GET' }).then(
  (r) => r.statusCode,
  (e: unknown) => String(e),
);
await plain.close();
const client = McpClient.create({ mcpUrl: url, caFile, clientCertFile, clientKeyFile, siteId: 's', hostId: 'h' });
const pinned = await client.nextOrder();
await client.close();
process.stdout.write(JSON.stringify({ control, pinned }));
