import type { StateDb } from '../state/index.js';
import { getKv } from '../state/index.js';
import { hasDeadLetterBookkeeping, listDeadLetters, outboxStats, unsignedOperatorActions, type DeadLetterDetail, type OperatorAction } from '../queue/index.js';
import { readDeliveryHealth } from './delivery-health.js';
import { rejectionCounts } from '../orders/index.js';
import { controlPlaneView, type ControlPlaneView } from './control-plane.js';

/** Per destination: how deliveries go, the last error and when, the queue's depth and age. */
export interface DestinationStatus {
  readonly destination: string;
  readonly state: 'ok' | 'failing' | 'unknown';
  readonly kind: string | null;
  readonly lastError: string | null;
  readonly lastErrorAt: number | null;
  readonly failingSince: number | null;
  readonly lastOkAt: number | null;
  readonly pending: number;
  readonly oldestPendingAgeMs: number | null;
  readonly dead: number;
}

export interface AgentStatus {
  readonly lastPoll: { at: number; ok: boolean; error: string | null } | null;
  readonly checks: readonly { check: string; status: string; summary: string; checkedAt: number }[];
  readonly queue: readonly { destination: string; pending: number; dead: number; done: number; oldestPendingAgeMs: number | null }[];
  readonly chain: readonly { hostId: string; seq: number; headHash: string }[];
  readonly orders: { lastSequence: number | null; accepted: number; rejected: number; rejectedByReason: Readonly<Record<string, number>> };
  readonly delivery: readonly DestinationStatus[];
  /** The first dead letters with their reasons (`delivery[].dead` counts them all; `compliance-agent dead-letters` lists, replays or discards them). */
  readonly deadLetters: readonly DeadLetterDetail[];
  /** Replays and discards the running agent has not yet recorded as signed evidence (it does at its next cycle). */
  readonly operatorActionsAwaitingEvidence: readonly OperatorAction[];
  /** An enrolled appliance's identity as the agent last assessed it (kv identity_status), else null. */
  readonly identity: { state: string; message: string; serial: string; notAfter: string; renewAt: string; at: number } | null;
  /** Signed liveness: the newest MSP-signed order (heartbeat) accepted, and whether it is too old. */
  readonly controlPlane: ControlPlaneView;
  /** The MCP's receipts kept for acknowledged bundles; countersigned ones were signed by a pinned key. */
  readonly receipts: { stored: number; countersigned: number; newest: { hostId: string; seq: number; envelopeHash: string } | null };
}

const MAX_DEAD_LETTERS_SHOWN = 100;

function deliveryStatus(db: StateDb, queue: AgentStatus['queue']): DestinationStatus[] {
  return queue.map((q) => {
    const h = readDeliveryHealth(db, q.destination);
    return {
      destination: q.destination,
      state: h?.state ?? 'unknown',
      kind: h?.kind ?? null,
      lastError: h?.lastError ?? null,
      lastErrorAt: h?.lastErrorAt ?? null,
      failingSince: h?.failingSince ?? null,
      lastOkAt: h?.lastOkAt ?? null,
      pending: q.pending,
      oldestPendingAgeMs: q.oldestPendingAgeMs,
      dead: q.dead,
    };
  });
}

/** Everything `compliance-agent status` shows, read from the state database only. */
export function readStatus(db: StateDb, now: number, opts: { controlPlaneMaxAgeMs?: number } = {}): AgentStatus {
  const poll = getKv(db, 'last_poll');
  const identity = getKv(db, 'identity_status');
  const checks = (
    db.prepare('SELECT check_name, status, result, checked_at FROM check_results ORDER BY check_name').all() as {
      check_name: string;
      status: string;
      result: string;
      checked_at: number;
    }[]
  ).map((r) => ({ check: r.check_name, status: r.status, summary: (JSON.parse(r.result) as { summary?: string }).summary ?? '', checkedAt: r.checked_at }));
  // Pending counts every undelivered item, whether or not a flush holds it right now.
  const queue = outboxStats(db, now).map((q) => ({
    destination: q.destination,
    pending: q.undelivered,
    dead: q.dead,
    done: q.done,
    oldestPendingAgeMs: q.oldestPendingAgeMs,
  }));
  const chain = (db.prepare('SELECT host_id, seq, head_hash FROM chain_head ORDER BY host_id').all() as { host_id: string; seq: number; head_hash: string }[]).map((c) => ({
    hostId: c.host_id,
    seq: c.seq,
    headHash: c.head_hash,
  }));
  const seqRow = db.prepare('SELECT MAX(last_sequence) AS s FROM order_sequence').get() as { s: number | null };
  const accepted = db.prepare("SELECT COUNT(*) AS a FROM orders_seen WHERE decision = 'accepted'").get() as { a: number };
  const rejectedByReason = rejectionCounts(db);
  const withDeadLetters = hasDeadLetterBookkeeping(db);
  return {
    lastPoll: poll ? (JSON.parse(poll) as AgentStatus['lastPoll']) : null,
    checks,
    queue,
    chain,
    orders: { lastSequence: seqRow.s, accepted: accepted.a, rejected: Object.values(rejectedByReason).reduce((a, b) => a + b, 0), rejectedByReason },
    delivery: deliveryStatus(db, queue),
    deadLetters: withDeadLetters ? listDeadLetters(db, {}, MAX_DEAD_LETTERS_SHOWN) : [],
    operatorActionsAwaitingEvidence: withDeadLetters ? unsignedOperatorActions(db) : [],
    identity: identity ? (JSON.parse(identity) as AgentStatus['identity']) : null,
    controlPlane: controlPlaneView(db, now, opts.controlPlaneMaxAgeMs ?? 86_400_000),
    receipts: readReceiptSummary(db),
  };
}

function readReceiptSummary(db: StateDb): AgentStatus['receipts'] {
  // A database an older agent wrote (read-only here, so not migrated) has no receipts yet.
  if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'receipts'").get() === undefined) return { stored: 0, countersigned: 0, newest: null };
  const n = db.prepare('SELECT COUNT(*) AS stored, COUNT(keyid) AS countersigned FROM receipts').get() as { stored: number; countersigned: number };
  const newest = db.prepare('SELECT host_id, seq, envelope_hash FROM receipts ORDER BY received_at DESC, seq DESC LIMIT 1').get() as
    { host_id: string; seq: number; envelope_hash: string } | undefined;
  return { ...n, newest: newest ? { hostId: newest.host_id, seq: newest.seq, envelopeHash: newest.envelope_hash } : null };
}

/** A duration for humans; a time in the future (the clock stepped back since) reads as 0s, never negative. */
function age(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172_800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86_400)}d`;
}

export function formatStatus(s: AgentStatus, now: number): string {
  const out: string[] = [];
  out.push(
    s.lastPoll
      ? `last poll:   ${new Date(s.lastPoll.at).toISOString()} (${age(now - s.lastPoll.at)} ago) ${s.lastPoll.ok ? 'ok' : `FAILED: ${s.lastPoll.error}`}`
      : 'last poll:   never',
  );
  out.push('checks:');
  if (s.checks.length === 0) out.push('  (none run yet)');
  for (const c of s.checks) out.push(`  ${c.check.padEnd(11)} ${c.status.padEnd(9)} ${c.summary} (${age(now - c.checkedAt)} ago)`);
  out.push('queue:');
  if (s.queue.length === 0) out.push('  (empty)');
  for (const q of s.queue) out.push(`  ${q.destination.padEnd(8)} pending ${q.pending}, oldest ${age(q.oldestPendingAgeMs)}, dead ${q.dead}, delivered ${q.done}`);
  out.push('chain:');
  if (s.chain.length === 0) out.push('  (no evidence yet)');
  for (const c of s.chain) out.push(`  ${c.hostId} seq ${c.seq} head ${c.headHash}`);
  if (s.identity) {
    const i = s.identity;
    out.push(
      i.state === 'ok'
        ? `identity:    ok, certificate ${i.serial} valid until ${i.notAfter}, renewal from ${i.renewAt}`
        : `identity:    ${i.state.toUpperCase().replace('_', ' ')}: ${i.message}`,
    );
  }
  const reasons = Object.entries(s.orders.rejectedByReason)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  out.push(`orders:      ${s.orders.accepted} accepted, ${s.orders.rejected} rejected${reasons ? ` (${reasons})` : ''}, last sequence ${s.orders.lastSequence ?? '-'}`);
  out.push(...formatDelivery(s, now));
  const cp = s.controlPlane;
  const signed = cp.signedAt === null ? 'no MSP-signed order yet' : `newest MSP-signed order ${new Date(cp.signedAt).toISOString()} (${age(cp.ageMs)} ago)`;
  out.push(`control plane: ${cp.stale ? 'STALE' : 'fresh'}: ${signed}, bound ${age(cp.maxAgeMs)}${cp.stale ? ' (control_plane_stale: the MCP may be withholding orders)' : ''}`);
  const r = s.receipts;
  out.push(`receipts:    ${r.stored} stored, ${r.countersigned} countersigned${r.newest ? `, newest for ${r.newest.hostId} seq ${r.newest.seq} ${r.newest.envelopeHash}` : ''}`);
  return out.join('\n') + '\n';
}

function at(ms: number | null, now: number): string {
  return ms === null ? 'never' : `${new Date(ms).toISOString()} (${age(now - ms)} ago)`;
}

function formatDelivery(s: AgentStatus, now: number): string[] {
  const out = ['delivery:'];
  if (s.delivery.length === 0) out.push('  (nothing queued yet)');
  for (const d of s.delivery) {
    const state = d.state === 'failing' ? `FAILING since ${at(d.failingSince, now)} [${d.kind}]` : d.state === 'ok' ? `ok, last delivery ${at(d.lastOkAt, now)}` : 'no attempt yet';
    out.push(`  ${d.destination.padEnd(8)} ${state}; pending ${d.pending}, oldest ${age(d.oldestPendingAgeMs)}; dead letters ${d.dead}`);
    if (d.lastError !== null) out.push(`           last error ${at(d.lastErrorAt, now)}: ${d.lastError}`);
  }
  const total = s.delivery.reduce((n, d) => n + d.dead, 0);
  const shown = s.deadLetters.length < total ? `, the first ${s.deadLetters.length} shown` : '';
  out.push(`dead letters: ${total === 0 ? 'none' : `${total}${shown} (compliance-agent dead-letters list|replay|discard)`}`);
  for (const d of s.deadLetters) {
    const what = d.check === null ? `bundle ${d.bundleId}` : `bundle ${d.bundleId} (seq ${d.seq}, ${d.check})`;
    out.push(`  #${d.id} ${d.destination} ${what}, dead ${at(d.deadAt, now)} after ${d.attempts} attempt(s): ${d.reason}`);
  }
  for (const a of s.operatorActionsAwaitingEvidence) {
    out.push(
      `operator action not yet signed: ${a.action} of ${a.items.length} dead letter(s) by ${a.operator.user} (uid ${a.operator.uid}) at ${new Date(a.requestedAt).toISOString()}; the running agent records it as signed evidence at its next cycle`,
    );
  }
  return out;
}
