import { getKv, setKv, type StateDb } from '../state/index.js';
import type { Order } from './schema.js';

/** An order that failed a check after its signature verified, as recorded in orders_seen. */
export interface RejectedOrderRecord {
  readonly orderId: string;
  readonly siteId: string;
  readonly sequence: number;
  readonly reason: string;
}

/**
 * Replay and rollback protection (docs/orders.md), backed by the state database tables orders_seen and
 * order_sequence. A read-only state answers the same questions and records nothing, so
 * `order verify` shows what the agent would decide without changing it.
 */
export interface OrderState {
  readonly readOnly: boolean;
  seen(orderId: string): boolean;
  lastSequence(siteId: string): number | null;
  /** Insert into orders_seen and raise the site's sequence in one transaction. */
  recordAccepted(order: Order, now: number): void;
  recordRejected(record: RejectedOrderRecord, now: number): void;
  /** Run check-then-record without another writer in between. */
  atomically<T>(fn: () => T): T;
}

/** The two questions both states answer from the database. */
function readers(db: StateDb): Pick<OrderState, 'seen' | 'lastSequence'> {
  const seenStmt = db.prepare('SELECT 1 FROM orders_seen WHERE order_id = ?');
  const seqStmt = db.prepare('SELECT last_sequence FROM order_sequence WHERE site_id = ?');
  return {
    seen: (id) => seenStmt.get(id) !== undefined,
    lastSequence: (site) => (seqStmt.get(site) as { last_sequence: number } | undefined)?.last_sequence ?? null,
  };
}

export function sqliteOrderState(db: StateDb): OrderState {
  const insertSeen = db.prepare('INSERT OR IGNORE INTO orders_seen (order_id, site_id, sequence, decision, reason, seen_at) VALUES (?, ?, ?, ?, ?, ?)');
  const bumpSeq = db.prepare(
    'INSERT INTO order_sequence (site_id, last_sequence) VALUES (?, ?) ON CONFLICT(site_id) DO UPDATE SET last_sequence = max(last_sequence, excluded.last_sequence)',
  );
  const accept = db.transaction((order: Order, now: number) => {
    insertSeen.run(order.order_id, order.site_id, order.sequence, 'accepted', null, now);
    bumpSeq.run(order.site_id, order.sequence);
    recordSignedAt(db, Date.parse(order.issued_at));
  });
  return {
    readOnly: false,
    ...readers(db),
    recordAccepted: (order, now) => accept(order, now),
    recordRejected: (r, now) => {
      insertSeen.run(r.orderId, r.siteId, r.sequence, 'rejected', r.reason, now);
    },
    atomically: (fn) => db.transaction(fn).immediate(),
  };
}

/** Reads an existing database (or nothing, when there is none yet) and never writes. */
export function readOnlyOrderState(db: StateDb | null): OrderState {
  if (!db) {
    return { readOnly: true, seen: () => false, lastSequence: () => null, recordAccepted: () => {}, recordRejected: () => {}, atomically: (fn) => fn() };
  }
  return {
    readOnly: true,
    ...readers(db),
    recordAccepted: () => {},
    recordRejected: () => {},
    atomically: (fn) => fn(),
  };
}

/** kv key of the newest issued_at of any accepted (so MSP-signed) order, heartbeats included. */
const SIGNED_AT_KEY = 'control_plane.signed_at';

/** Every accepted order proves the MSP signed something at its issued_at: keep the newest. */
function recordSignedAt(db: StateDb, issuedAt: number): void {
  const prev = Number(getKv(db, SIGNED_AT_KEY) ?? '0');
  if (issuedAt > prev) setKv(db, SIGNED_AT_KEY, String(issuedAt));
}

/** The newest MSP-signed time this appliance has accepted, or null before the first order. */
export function newestSignedAt(db: StateDb): number | null {
  const v = getKv(db, SIGNED_AT_KEY);
  return v === null ? null : Number(v);
}
