export { McpClient } from './client.js';
export type { McpClientOptions, McpFailure, McpFailureCode, NextOrderResult, DeliveryResult } from './types.js';
