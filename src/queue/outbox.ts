import type { Statement } from 'better-sqlite3';
import { AgentError } from '../common/index.js';
import type { AcceptedReceipt } from '../evidence/index.js';
import { storageWrite, type StateDb } from '../state/index.js';
import { backoffDelay } from './backoff.js';
import { DESTINATIONS, type DeadLetter, type Destination, type DestinationStats, type QueueDepth, type OutboxItem, type OutboxOptions } from './types.js';

const MAX_REASON = 2000;
const DEFAULTS = { maxAttempts: 50, baseDelayMs: 1000, maxDelayMs: 15 * 60_000, leaseMs: 60_000 } as const;

interface Row {
  id: number;
  bundle_id: string;
  body: string;
  attempts: number;
  created_at: number;
  next_attempt_at: number;
  lease_until: number;
}

/**
 * The durable outbox on the state database's `outbox` table: one row per (destination, bundle).
 * A row is `pending` until acknowledged (`done`, with the receipt) or given up (`dead`, with the
 * reason). Each destination is an independent ordered queue.
 *
 * Clock jumps: a lease or a backoff that reaches further into the future than this outbox could
 * ever have set (leaseMs, maxDelayMs) was written before the clock went backwards; it is treated
 * as expired so a clock step never parks the queue.
 */
export class Outbox {
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly leaseMs: number;
  private readonly random: () => number;

  private readonly s: Record<
    'insert' | 'head' | 'leaseRange' | 'ack' | 'exists' | 'get' | 'reschedule' | 'kill' | 'release' | 'releaseAll' | 'deadAll' | 'deadOne' | 'receipt' | 'storeReceipt' | 'prune',
    Statement
  >;
  private readonly statsQueries: StatsQueries;
  private readonly enqueueTx: (bundleId: string, body: string, destinations: readonly Destination[], now: number) => void;
  private readonly leaseTx: (destination: Destination, limit: number, now: number) => OutboxItem[];
  private readonly retryTx: (id: number, error: string, now: number) => void;

  constructor(
    private readonly db: StateDb,
    options: OutboxOptions = {},
  ) {
    this.maxAttempts = positive('maxAttempts', options.maxAttempts ?? DEFAULTS.maxAttempts, 1);
    this.baseDelayMs = positive('baseDelayMs', options.baseDelayMs ?? DEFAULTS.baseDelayMs, 0);
    this.maxDelayMs = positive('maxDelayMs', options.maxDelayMs ?? DEFAULTS.maxDelayMs, 0);
    this.leaseMs = positive('leaseMs', options.leaseMs ?? DEFAULTS.leaseMs, 1);
    this.random = options.random ?? Math.random;

    this.s = {
      insert: db.prepare(
        `INSERT INTO outbox (destination, bundle_id, body, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (destination, bundle_id) DO NOTHING`,
      ),
      head: db.prepare(
        `SELECT id, bundle_id, body, attempts, created_at, next_attempt_at, lease_until FROM outbox
          WHERE destination = ? AND state = 'pending' ORDER BY id LIMIT ?`,
      ),
      leaseRange: db.prepare(`UPDATE outbox SET lease_until = ? WHERE destination = ? AND state = 'pending' AND id BETWEEN ? AND ?`),
      // The body is dropped once delivered: the evidence table keeps the envelope, the outbox the receipt.
      ack: db.prepare(
        `UPDATE outbox SET state = 'done', receipt_id = ?, done_at = ?, lease_until = 0, dead_reason = NULL, body = ''
          WHERE id = ? AND state != 'done'`,
      ),
      exists: db.prepare('SELECT 1 FROM outbox WHERE id = ?'),
      get: db.prepare('SELECT attempts, state FROM outbox WHERE id = ?'),
      reschedule: db.prepare(`UPDATE outbox SET attempts = ?, last_error = ?, next_attempt_at = ?, lease_until = 0 WHERE id = ? AND state = 'pending'`),
      kill: db.prepare(`UPDATE outbox SET state = 'dead', attempts = ?, dead_reason = ?, done_at = ?, lease_until = 0 WHERE id = ? AND state = 'pending'`),
      release: db.prepare(`UPDATE outbox SET lease_until = 0 WHERE id = ? AND state = 'pending'`),
      releaseAll: db.prepare(`UPDATE outbox SET lease_until = 0 WHERE state = 'pending' AND lease_until != 0`),
      deadAll: db.prepare(`SELECT id, destination, bundle_id, dead_reason, attempts FROM outbox WHERE state = 'dead' ORDER BY id LIMIT ?`),
      deadOne: db.prepare(`SELECT id, destination, bundle_id, dead_reason, attempts FROM outbox WHERE destination = ? AND state = 'dead' ORDER BY id LIMIT ?`),
      receipt: db.prepare(`SELECT receipt_id FROM outbox WHERE destination = ? AND bundle_id = ? AND state = 'done'`),
      prune: db.prepare(`DELETE FROM outbox WHERE state = 'done' AND done_at < ?`),
      storeReceipt: db.prepare(
        `INSERT INTO receipts (bundle_id, host_id, seq, envelope_hash, receipt_id, receipt, keyid, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (bundle_id) DO UPDATE SET receipt_id = excluded.receipt_id, receipt = excluded.receipt, keyid = excluded.keyid, received_at = excluded.received_at`,
      ),
    };

    this.statsQueries = prepareStats(db);

    // Nested inside a caller's transaction these become savepoints, so chaining, storing and
    // enqueueing a bundle stay one atomic commit and many bundles can share one (group commit).
    this.enqueueTx = db.transaction((bundleId: string, body: string, destinations: readonly Destination[], now: number) => {
      for (const d of destinations) this.s.insert.run(d, bundleId, body, now, now);
    });
    const leaseTx = db.transaction((destination: Destination, limit: number, now: number) => this.leaseIn(destination, limit, now));
    // IMMEDIATE: two processes leasing at once must not both read the same rows as free.
    this.leaseTx = (destination, limit, now) => leaseTx.immediate(destination, limit, now);
    this.retryTx = db.transaction((id: number, error: string, now: number) => this.retryIn(id, error, now));
  }

  enqueue(bundleId: string, body: string, destinations: readonly Destination[], now: number): void {
    for (const d of destinations) {
      if (!DESTINATIONS.includes(d)) throw new AgentError('queue_destination', `unknown outbox destination "${String(d)}"`);
    }
    if (bundleId.length === 0) throw new AgentError('queue_bundle_id', 'cannot enqueue a bundle without a bundle_id');
    storageWrite(`enqueue bundle ${bundleId}`, () => this.enqueueTx(bundleId, body, destinations, now));
  }

  lease(destination: Destination, limit: number, now: number): OutboxItem[] {
    if (!Number.isInteger(limit) || limit < 1) throw new AgentError('queue_limit', `lease limit must be a positive integer, got ${limit}`);
    return storageWrite(`lease ${destination} items`, () => this.leaseTx(destination, limit, now));
  }

  private leaseIn(destination: Destination, limit: number, now: number): OutboxItem[] {
    const rows = this.s.head.all(destination, limit) as Row[];
    const items: OutboxItem[] = [];
    // Only a contiguous prefix of the destination's queue: stopping at the first item that is not
    // due (or is leased elsewhere) is what keeps delivery in enqueue order.
    for (const r of rows) {
      if (!this.isDue(r.next_attempt_at, now) || this.isLeased(r.lease_until, now)) break;
      items.push({ id: r.id, destination, bundleId: r.bundle_id, body: r.body, attempts: r.attempts, createdAt: r.created_at });
    }
    if (items.length > 0) this.s.leaseRange.run(now + this.leaseMs, destination, items[0]!.id, items[items.length - 1]!.id);
    return items;
  }

  /** Mark delivered; the MCP's countersigned receipt, when there is one, is kept with it (table receipts). */
  ack(id: number, receiptId: string, now: number, receipt?: AcceptedReceipt): void {
    if (storageWrite(`record the delivery of outbox item ${id}`, () => this.s.ack.run(receiptId, now, id)).changes === 0) this.mustExist(id);
    if (receipt) {
      const r = receipt.receipt;
      storageWrite(`store the receipt for bundle ${r.bundle_id}`, () =>
        this.s.storeReceipt.run(r.bundle_id, r.host_id, r.seq, r.envelope_hash, r.receipt_id, receipt.envelope, receipt.keyid, now),
      );
    }
  }

  retry(id: number, error: string, now: number): void {
    storageWrite(`reschedule outbox item ${id}`, () => this.retryTx(id, error, now));
  }

  private retryIn(id: number, error: string, now: number): void {
    const row = this.s.get.get(id) as { attempts: number; state: string } | undefined;
    if (!row) throw unknownItem(id);
    // Delivered or dead meanwhile (e.g. a late ack from another flusher): nothing to reschedule.
    if (row.state !== 'pending') return;
    const attempts = row.attempts + 1;
    if (attempts >= this.maxAttempts) {
      this.s.kill.run(attempts, clipNotingLength(`too many attempts: ${error}`), now, id);
      return;
    }
    const delay = backoffDelay(row.attempts, this.baseDelayMs, this.maxDelayMs, this.random);
    this.s.reschedule.run(attempts, clipNotingLength(error), now + delay, id);
  }

  dead(id: number, reason: string, now: number): void {
    const row = this.s.get.get(id) as { attempts: number; state: string } | undefined;
    if (!row) throw unknownItem(id);
    if (row.state !== 'pending') return;
    // The rejected delivery was an attempt too.
    storageWrite(`dead-letter outbox item ${id}`, () => this.s.kill.run(row.attempts + 1, clipNotingLength(reason), now, id));
  }

  /** Give a leased item back without charging an attempt (it waited behind a failed one). */
  release(id: number): void {
    if (storageWrite(`release outbox item ${id}`, () => this.s.release.run(id)).changes === 0) this.mustExist(id);
  }

  /**
   * Void every lease. Only for the single owner of the database at start-up: whatever a killed
   * predecessor had in flight is delivered again at once (the MCP deduplicates by bundle_id).
   */
  releaseAll(): number {
    return storageWrite('release leases', () => this.s.releaseAll.run()).changes;
  }

  /** Undelivered items of one destination, leased or not. */
  pendingCount(destination: Destination, now: number): number {
    return pendingOf(this.statsQueries, destination, now, this.leaseMs).total;
  }

  /** Every destination, those without a row as zeros. */
  /** What a cycle needs (once's exit code, the metrics): undelivered and dead rows, never the delivered ones. */
  depth(now: number): QueueDepth[] {
    return DESTINATIONS.map((destination) => depthOf(this.statsQueries, destination, now, this.leaseMs));
  }

  stats(now: number): DestinationStats[] {
    return DESTINATIONS.map((destination) => statsOf(this.statsQueries, destination, now, this.leaseMs));
  }

  deadLetters(destination?: Destination, limit = 100): DeadLetter[] {
    const rows = (destination ? this.s.deadOne.all(destination, limit) : this.s.deadAll.all(limit)) as {
      id: number;
      destination: Destination;
      bundle_id: string;
      dead_reason: string;
      attempts: number;
    }[];
    return rows.map((r) => ({ id: r.id, destination: r.destination, bundleId: r.bundle_id, reason: r.dead_reason, attempts: r.attempts }));
  }

  receipt(destination: Destination, bundleId: string): string | null {
    const row = this.s.receipt.get(destination, bundleId) as { receipt_id: string } | undefined;
    return row?.receipt_id ?? null;
  }

  pruneDone(olderThan: number): number {
    return storageWrite('prune delivered outbox rows', () => this.s.prune.run(olderThan)).changes;
  }

  /** Run `fn` as one transaction: one commit for a batch of results, or a group of enqueues. */
  batch<T>(fn: () => T): T {
    return storageWrite('commit an outbox batch', () => this.db.transaction(fn)());
  }

  private isDue(nextAttemptAt: number, now: number): boolean {
    return nextAttemptAt <= now || nextAttemptAt > now + this.maxDelayMs;
  }

  private isLeased(leaseUntil: number, now: number): boolean {
    return leaseUntil > now && leaseUntil <= now + this.leaseMs;
  }

  private mustExist(id: number): void {
    if (this.s.exists.get(id) === undefined) throw unknownItem(id);
  }
}

/**
 * The statistics' queries: index ranges on (destination, state). A cycle reads the depth, which
 * costs what is pending and dead; only `stats` counts the delivered rows, kept for months.
 */
interface StatsQueries {
  readonly pending: Statement;
  readonly count: Statement;
}

function prepareStats(db: StateDb): StatsQueries {
  return {
    pending: db.prepare(
      `SELECT COUNT(*) AS total, COALESCE(SUM(lease_until > ? AND lease_until <= ?), 0) AS leased, MIN(created_at) AS oldest
         FROM outbox WHERE destination = ? AND state = 'pending'`,
    ),
    count: db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE destination = ? AND state = ?'),
  };
}

function pendingOf(q: StatsQueries, destination: Destination, now: number, leaseMs: number): { total: number; leased: number; oldest: number | null } {
  return q.pending.get(now, now + leaseMs, destination) as { total: number; leased: number; oldest: number | null };
}

function depthOf(q: StatsQueries, destination: Destination, now: number, leaseMs: number): QueueDepth {
  const p = pendingOf(q, destination, now, leaseMs);
  return {
    destination,
    pending: p.total - p.leased,
    leased: p.leased,
    undelivered: p.total,
    dead: (q.count.get(destination, 'dead') as { n: number }).n,
    // A clock stepped back makes rows look younger than zero: never a negative age.
    oldestPendingAgeMs: p.oldest === null ? null : Math.max(0, now - p.oldest),
  };
}

function statsOf(q: StatsQueries, destination: Destination, now: number, leaseMs: number): DestinationStats {
  return { ...depthOf(q, destination, now, leaseMs), done: (q.count.get(destination, 'done') as { n: number }).n };
}

/**
 * The statistics of the destinations that have outbox rows, by name, read without an Outbox: for
 * a reader of the database (the status command opens it read-only and prepares nothing that writes).
 */
export function outboxStats(db: StateDb, now: number): DestinationStats[] {
  const q = prepareStats(db);
  return [...DESTINATIONS]
    .sort()
    .map((destination) => statsOf(q, destination, now, DEFAULTS.leaseMs))
    .filter((s) => s.pending + s.leased + s.dead + s.done > 0);
}

/**
 * Errors and reasons come from remote peers; keep what is stored per row bounded, and say how
 * long the original was (an operator reading a dead letter knows it was cut, and by how much).
 */
function clipNotingLength(text: string): string {
  return text.length <= MAX_REASON ? text : `${text.slice(0, MAX_REASON)}... (${text.length} chars)`;
}

function unknownItem(id: number): AgentError {
  return new AgentError('queue_unknown_item', `outbox item ${id} does not exist (pruned, or from another database)`);
}

function positive(name: string, value: number, min: number): number {
  if (!(value >= min) || Number.isNaN(value)) throw new AgentError('queue_options', `outbox option ${name} must be a number >= ${min}, got ${value}`);
  return value;
}
