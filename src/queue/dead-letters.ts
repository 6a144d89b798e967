import { AgentError } from '../common/index.js';
import { storageWrite, type StateDb } from '../state/index.js';
import { DESTINATIONS, type Destination } from './types.js';

/** A dead-lettered outbox row with what the evidence store knows of its bundle. */
export interface DeadLetterDetail {
  readonly id: number;
  readonly destination: Destination;
  readonly bundleId: string;
  readonly reason: string;
  readonly attempts: number;
  readonly queuedAt: number;
  readonly deadAt: number | null;
  /** The bundle's check and seq; null once the local evidence store pruned it. */
  readonly check: string | null;
  readonly seq: number | null;
}

/** Who ran a dead-letter command, as the operating system reports it. */
export interface OperatorIdentity {
  readonly user: string;
  readonly uid: number;
  /** The user who ran sudo, as sudo reports it in SUDO_USER/SUDO_UID (claimed, not verified). */
  readonly sudoUser: string | null;
  readonly sudoUid: number | null;
}

export type OperatorActionKind = 'replay' | 'discard';

export interface OperatorAction {
  readonly id: number;
  readonly action: OperatorActionKind;
  readonly items: readonly { readonly id: number; readonly destination: Destination; readonly bundleId: string; readonly reason: string }[];
  readonly reason: string | null;
  readonly operator: OperatorIdentity;
  readonly requestedAt: number;
  /** The evidence bundle recording this action; null until the agent has signed it. */
  readonly bundleId: string | null;
}

export interface DeadLetterSelection {
  readonly destination?: Destination;
  /** Outbox ids (as `dead-letters list` shows them); absent: every dead letter of the selection. */
  readonly ids?: readonly number[];
}

const DETAIL = `SELECT o.id, o.destination, o.bundle_id, o.dead_reason, o.attempts, o.created_at, o.done_at, o.dead_alerted, e.check_name, e.seq
                  FROM outbox o LEFT JOIN evidence e ON e.bundle_id = o.bundle_id
                 WHERE o.state = 'dead'`;

interface DetailRow {
  id: number;
  destination: Destination;
  bundle_id: string;
  dead_reason: string | null;
  attempts: number;
  created_at: number;
  done_at: number | null;
  dead_alerted: number;
  check_name: string | null;
  seq: number | null;
}

function detail(r: DetailRow): DeadLetterDetail {
  return {
    id: r.id,
    destination: r.destination,
    bundleId: r.bundle_id,
    reason: r.dead_reason ?? '(no reason recorded)',
    attempts: r.attempts,
    queuedAt: r.created_at,
    deadAt: r.done_at,
    check: r.check_name,
    seq: r.seq,
  };
}

/** False for a state database an older agent wrote and this one has not migrated yet (a read-only reader cannot). */
export function hasDeadLetterBookkeeping(db: StateDb): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'operator_actions'").get() !== undefined;
}

/** Dead letters in queue order, optionally of one destination only, the first `limit` of them. */
export function listDeadLetters(db: StateDb, selection: DeadLetterSelection = {}, limit = -1): DeadLetterDetail[] {
  const rows = (
    selection.destination
      ? db.prepare(`${DETAIL} AND o.destination = ? ORDER BY o.id LIMIT ?`).all(selection.destination, limit)
      : db.prepare(`${DETAIL} ORDER BY o.id LIMIT ?`).all(limit)
  ) as DetailRow[];
  const wanted = selection.ids ? new Set(selection.ids) : null;
  return rows.filter((r) => !wanted || wanted.has(r.id)).map(detail);
}

/**
 * Replay (back to pending, attempts reset, due now) or discard (row removed; the bundle stays in
 * the evidence store) the selected dead letters, and record the action for the agent to sign, in
 * ONE transaction: either the queue changed and the action awaits its evidence, or nothing
 * happened. A replayed row keeps its id, so it is delivered in its original place in its
 * destination's queue, before anything queued after it.
 */
export function applyOperatorAction(
  db: StateDb,
  action: OperatorActionKind,
  selection: DeadLetterSelection,
  reason: string | null,
  operator: OperatorIdentity,
  now: number,
): OperatorAction {
  if (selection.destination && !DESTINATIONS.includes(selection.destination)) {
    throw new AgentError('dead_letter_selection', `unknown destination "${selection.destination}" (one of ${DESTINATIONS.join(', ')})`);
  }
  const tx = db.transaction((): OperatorAction => {
    const found = listDeadLetters(db, selection);
    if (selection.ids) {
      const missing = selection.ids.filter((id) => !found.some((d) => d.id === id));
      if (missing.length > 0) {
        throw new AgentError(
          'dead_letter_selection',
          `no dead letter with id ${missing.join(', ')}${selection.destination ? ` for ${selection.destination}` : ''}; nothing was changed`,
        );
      }
    }
    if (found.length === 0) throw new AgentError('dead_letter_selection', `no dead letters${selection.destination ? ` for ${selection.destination}` : ''}; nothing was changed`);
    const replay = db.prepare(
      `UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, lease_until = 0, last_error = NULL, dead_reason = NULL, done_at = NULL, dead_alerted = 0
        WHERE id = ? AND state = 'dead'`,
    );
    const discard = db.prepare(`DELETE FROM outbox WHERE id = ? AND state = 'dead'`);
    for (const d of found) {
      if (action === 'replay') replay.run(now, d.id);
      else discard.run(d.id);
    }
    const items = found.map((d) => ({ id: d.id, destination: d.destination, bundleId: d.bundleId, reason: d.reason }));
    const info = db
      .prepare('INSERT INTO operator_actions (action, items, reason, operator, requested_at) VALUES (?, ?, ?, ?, ?)')
      .run(action, JSON.stringify(items), reason, JSON.stringify(operator), now);
    return { id: Number(info.lastInsertRowid), action, items, reason, operator, requestedAt: now, bundleId: null };
  });
  // IMMEDIATE: the agent's flush must not lease a row between our read and our change.
  return storageWrite(`${action} dead letters`, () => tx.immediate());
}

interface ActionRow {
  id: number;
  action: OperatorActionKind;
  items: string;
  reason: string | null;
  operator: string;
  requested_at: number;
  bundle_id: string | null;
}

function action(r: ActionRow): OperatorAction {
  return {
    id: r.id,
    action: r.action,
    items: JSON.parse(r.items) as OperatorAction['items'],
    reason: r.reason,
    operator: JSON.parse(r.operator) as OperatorIdentity,
    requestedAt: r.requested_at,
    bundleId: r.bundle_id,
  };
}

/** Operator actions the agent has not yet recorded as signed evidence, oldest first. */
export function unsignedOperatorActions(db: StateDb): OperatorAction[] {
  return (db.prepare('SELECT * FROM operator_actions WHERE bundle_id IS NULL ORDER BY id').all() as ActionRow[]).map(action);
}

/** Link an action to the bundle that records it; run in the transaction that chains the bundle. */
export function markActionSigned(db: StateDb, id: number, bundleId: string): void {
  db.prepare('UPDATE operator_actions SET bundle_id = ? WHERE id = ? AND bundle_id IS NULL').run(bundleId, id);
}

/** Dead letters no alert has been raised for yet, in queue order. */
export function unalertedDeadLetters(db: StateDb): DeadLetterDetail[] {
  return (db.prepare(`${DETAIL} AND o.dead_alerted = 0 ORDER BY o.id`).all() as DetailRow[]).map(detail);
}

/** Mark dead letters as alerted; run in the transaction that chains the alert. */
export function markAlerted(db: StateDb, ids: readonly number[]): void {
  const mark = db.prepare('UPDATE outbox SET dead_alerted = 1 WHERE id = ?');
  for (const id of ids) mark.run(id);
}
