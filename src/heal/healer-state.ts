import Database from 'better-sqlite3';
import { existsSync, linkSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { AgentError, errnoCode } from '../common/index.js';
import type { Envelope } from '../crypto/index.js';
import type { Order } from '../orders/index.js';

/**
 * The healer's own memory, in its root-only directory: nothing the agent writes or deletes can
 * change it. It answers "is this order new" by the highest sequence root ever recorded per site
 * (never pruned) and by every order it recorded (never pruned either: only signed orders get in),
 * remembers the drop-box requests it already answered, and holds orders waiting for the window.
 */

const SCHEMA_VERSION = 1;
const SCHEMA = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE sequences (site_id TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL);
  CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('held', 'applying', 'done', 'interrupted', 'dropped')),
    envelope TEXT,
    pre_generation INTEGER,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE requests (request_id TEXT PRIMARY KEY, answered_at INTEGER NOT NULL, outcome TEXT NOT NULL);
`;

export type OrderState = 'held' | 'applying' | 'done' | 'interrupted' | 'dropped';

export interface OrderRow {
  readonly orderId: string;
  readonly siteId: string;
  readonly sequence: number;
  readonly requestId: string;
  readonly firstSeenAt: number;
  readonly state: OrderState;
  readonly envelope: Envelope | null;
  /** The system generation that ran when root began applying the order (null before, or unknown). */
  readonly preGeneration: number | null;
}

interface RawOrderRow {
  order_id: string;
  site_id: string;
  sequence: number;
  request_id: string;
  first_seen_at: number;
  state: OrderState;
  envelope: string | null;
  pre_generation: number | null;
}

const toRow = (r: RawOrderRow): OrderRow => ({
  orderId: r.order_id,
  siteId: r.site_id,
  sequence: r.sequence,
  requestId: r.request_id,
  firstSeenAt: r.first_seen_at,
  state: r.state,
  envelope: r.envelope === null ? null : (JSON.parse(r.envelope) as Envelope),
  preGeneration: r.pre_generation,
});

/** Requests answered longer ago than this are forgotten; their orders are not (a re-sent one is a replay). */
const REQUEST_MEMORY_MS = 30 * 86_400_000;

function pragmas(db: Database.Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
}

/**
 * Create the healer's state once, at install. Refuses when one exists: a state is never replaced
 * by an empty one. Built under a temp name and linked into place, so two inits cannot both win.
 */
export function initHealerState(path: string, now: number): void {
  if (existsSync(path)) throw new AgentError('healer_state_exists', `${path}: the healer's state already exists; refusing to replace it`);
  const tmp = `${path}.${randomBytes(8).toString('hex')}.init`;
  const db = new Database(tmp);
  try {
    db.exec(SCHEMA);
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?), (?, ?)').run('schema', String(SCHEMA_VERSION), 'created_at', new Date(now).toISOString());
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    db.pragma('journal_mode = DELETE');
  } finally {
    db.close();
  }
  try {
    linkSync(tmp, path);
  } catch (e) {
    throw new AgentError('healer_state_exists', `${path}: cannot create the healer's state (${errnoCode(e, 'error')})`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

export class HealerState {
  private constructor(private readonly db: Database.Database) {}

  /** Open the existing state; missing, unreadable or foreign is an error: never read as empty. */
  static open(path: string): HealerState {
    if (!existsSync(path)) {
      throw new AgentError(
        'healer_state_missing',
        `${path}: the healer's state is missing; it is created once at install (heal-apply --init) and never assumed empty: refusing to act`,
      );
    }
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: true });
      pragmas(db);
      const ok = db.pragma('quick_check', { simple: true });
      if (ok !== 'ok') throw new Error(`integrity check: ${String(ok)}`);
      const version = db.pragma('user_version', { simple: true });
      if (version !== SCHEMA_VERSION) throw new Error(`schema ${String(version)}, expected ${SCHEMA_VERSION}`);
    } catch (e) {
      throw new AgentError('healer_state_unreadable', `${path}: the healer's state cannot be used (${(e as Error).message}); refusing to act until it is repaired`);
    }
    return new HealerState(db);
  }

  close(): void {
    this.db.close();
  }

  lastSequence(siteId: string): number | null {
    const r = this.db.prepare('SELECT last_sequence FROM sequences WHERE site_id = ?').get(siteId) as { last_sequence: number } | undefined;
    return r?.last_sequence ?? null;
  }

  order(orderId: string): OrderRow | null {
    const r = this.db.prepare('SELECT * FROM orders WHERE order_id = ?').get(orderId) as RawOrderRow | undefined;
    return r ? toRow(r) : null;
  }

  ordersIn(state: OrderState): OrderRow[] {
    return (this.db.prepare('SELECT * FROM orders WHERE state = ? ORDER BY sequence').all(state) as RawOrderRow[]).map(toRow);
  }

  /** First sight of a signed order: record when, and raise the site's high-water mark, in one transaction. */
  recordOrder(order: Order, requestId: string, state: 'held' | 'applying', envelope: Envelope, now: number): void {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO orders (order_id, site_id, sequence, request_id, first_seen_at, state, envelope, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(order.order_id, order.site_id, order.sequence, requestId, now, state, JSON.stringify(envelope), now);
      this.db
        .prepare('INSERT INTO sequences (site_id, last_sequence) VALUES (?, ?) ON CONFLICT(site_id) DO UPDATE SET last_sequence = max(last_sequence, excluded.last_sequence)')
        .run(order.site_id, order.sequence);
    })();
  }

  setOrderState(orderId: string, state: OrderState, now: number): void {
    this.db.prepare("UPDATE orders SET state = ?, envelope = CASE WHEN ? = 'held' THEN envelope ELSE NULL END, updated_at = ? WHERE order_id = ?").run(state, state, now, orderId);
  }

  /** Move a held order to applying; false when another healer run took it first. */
  claimHeld(orderId: string, now: number): boolean {
    return this.db.prepare("UPDATE orders SET state = 'applying', envelope = NULL, updated_at = ? WHERE order_id = ? AND state = 'held'").run(now, orderId).changes === 1;
  }

  /** The generation to return to, on disk before the first action: it outlives a healer killed mid-switch. */
  recordPreGeneration(orderId: string, generation: number | null, now: number): void {
    this.db.prepare('UPDATE orders SET pre_generation = ?, updated_at = ? WHERE order_id = ?').run(generation, now, orderId);
  }

  requestAnswered(requestId: string): boolean {
    return this.db.prepare('SELECT 1 FROM requests WHERE request_id = ?').get(requestId) !== undefined;
  }

  recordAnswered(requestId: string, outcome: string, now: number): void {
    this.db.prepare('INSERT OR REPLACE INTO requests (request_id, answered_at, outcome) VALUES (?, ?, ?)').run(requestId, now, outcome);
  }

  forgetOldRequests(now: number): void {
    this.db.prepare('DELETE FROM requests WHERE answered_at < ?').run(now - REQUEST_MEMORY_MS);
  }
}
