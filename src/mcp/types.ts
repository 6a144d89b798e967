import type { PublicKey } from '../crypto/index.js';
import type { HttpsFailure } from '../delivery/index.js';

export interface McpClientOptions {
  /** https URL of the MCP; a path prefix is kept (`https://mcp.example/api` → `/api/orders/next`). */
  readonly mcpUrl: string;
  /** The only CA trusted for the MCP's server certificate; system CAs are never used. */
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  readonly siteId: string;
  readonly hostId: string;
  /** TCP connect plus TLS handshake. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Request sent → response headers received. Default 30 s. */
  readonly headersTimeoutMs?: number;
  /** Longest silence between response body chunks. Default 30 s. */
  readonly bodyTimeoutMs?: number;
  /** Whole exchange, so a server dripping a byte just inside bodyTimeout still ends. Default 60 s. */
  readonly requestTimeoutMs?: number;
  /** Largest response body read; a larger one is aborted while streaming. Default 256 KiB. */
  readonly maxResponseBytes?: number;
  /**
   * The MCP's receipt keys (config mcpReceiptKeys): a receipt counts only when one of them signed
   * it. Empty: receipts are still bound to the bundle and its hash, but not countersigned.
   */
  readonly receiptKeys?: readonly PublicKey[];
  /** Clock for the batch endpoint's retry after a 404 (default Date.now). */
  readonly now?: () => number;
  /** How long single posts serve after the batch endpoint answered 404/405. Default 1 hour. */
  readonly batchRetryAfterMs?: number;
}

/** A transport failure (src/delivery), an answer too large, an HTTP status that is not the one expected, or a body that does not parse. */
export type McpFailureCode = HttpsFailure['code'] | 'http_status' | 'bad_json';

/** One failed exchange with the MCP: `message` is one line fit for a log or the status command. */
export interface McpFailure {
  readonly code: McpFailureCode;
  readonly message: string;
  readonly status?: number;
  /** Whether the same request may succeed later (transport trouble, 5xx), as opposed to a 4xx verdict. */
  readonly retryable: boolean;
}

/** `envelope` is null when no order is waiting, otherwise the unverified JSON the MCP sent. */
export type NextOrderResult = { readonly ok: true; readonly envelope: unknown } | { readonly ok: false; readonly error: McpFailure };
