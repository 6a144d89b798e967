import { createRequire } from 'node:module';
import type { Agent as UndiciAgent } from 'undici';

const require = createRequire(import.meta.url);

/**
 * undici's connection pool (Agent) with its request API, and nothing else. The package index also
 * loads fetch, WebSocket, EventSource, the HTTP cache and the mocks: about 40 ms and 8 MB more at
 * every start, for nothing the agent uses (bench/cold-start.ts, bench/agent-loop.ts). This is what
 * that index does for `request` (Object.assign(Dispatcher.prototype, api)). undici publishes no
 * exports map, so these modules are reachable; should a release move them, the agent fails at
 * start (and every MCP test with it), not later.
 */
function loadAgent(): typeof UndiciAgent {
  const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
  Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js'));
  return require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;
}

export const Agent = loadAgent();
export type Agent = UndiciAgent;
