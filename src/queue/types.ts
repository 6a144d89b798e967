import type { AcceptedReceipt } from '../evidence/index.js';

/** Where a queued bundle goes: the MCP, or one of the reseller sinks. */
export type Destination = 'mcp' | 'webhook' | 'syslog';

export const DESTINATIONS: readonly Destination[] = ['mcp', 'webhook', 'syslog'];

export interface OutboxItem {
  readonly id: number;
  readonly destination: Destination;
  readonly bundleId: string;
  readonly body: string;
  /** Failed delivery attempts charged to this item so far. */
  readonly attempts: number;
  readonly createdAt: number;
}

/**
 * What a destination said about one item: delivered, try later, or never (dead letter). The MCP's
 * `ok` carries the receipt it countersigned; a `retry` with `badReceipt` is an MCP that answered
 * with a receipt that does not acknowledge what was sent (raised as an alert by the agent).
 */
export type DeliveryResult =
  { kind: 'ok'; receiptId: string; receipt?: AcceptedReceipt } | { kind: 'retry'; error: string; badReceipt?: true } | { kind: 'reject'; reason: string };

/**
 * Delivers leased items to one destination: one result per item, in order. `budget` aborts the
 * exchange in flight when the cycle's flush time is spent (the batch is then retried).
 */
export type Deliver = (items: OutboxItem[], budget?: AbortSignal) => Promise<DeliveryResult[]>;

export interface OutboxOptions {
  /** Failed attempts after which an item is dead-lettered (default 50). */
  maxAttempts?: number;
  /** Backoff base in ms (default 1000). */
  baseDelayMs?: number;
  /** Backoff cap in ms (default 15 minutes). */
  maxDelayMs?: number;
  /** How long a leased item stays invisible to other leasers (default 60000). */
  leaseMs?: number;
  /** Source of jitter in [0, 1) (default Math.random); injectable for tests. */
  random?: () => number;
}

export interface QueueDepth {
  readonly destination: Destination;
  /** Undelivered and not currently leased. */
  readonly pending: number;
  /** Undelivered and leased by a flusher right now. */
  readonly leased: number;
  /** Every undelivered item, leased or not: the queue's depth. */
  readonly undelivered: number;
  readonly dead: number;
  /** Age of the oldest undelivered item (leased or not), null when there is none. */
  readonly oldestPendingAgeMs: number | null;
}

export interface DestinationStats extends QueueDepth {
  /** Delivered rows still kept (until the prune): for `status`, too costly for every cycle. */
  readonly done: number;
}

export interface DeadLetter {
  readonly id: number;
  readonly destination: Destination;
  readonly bundleId: string;
  readonly reason: string;
  readonly attempts: number;
}
