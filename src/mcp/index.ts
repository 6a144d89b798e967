export { McpClient } from './client.js';
export { identityExchange, type IdentityResponse } from './identity-exchange.js';
export type { McpClientOptions, McpFailure, McpFailureCode, NextOrderResult } from './types.js';
