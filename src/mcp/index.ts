export { McpClient } from './client.js';
export type { McpClientOptions, McpFailure, McpFailureCode, NextOrderResult } from './types.js';
