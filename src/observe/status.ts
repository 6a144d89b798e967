import type { StateDb } from '../state/index.js';
import { getKv } from '../state/index.js';

export interface AgentStatus {
  readonly lastPoll: { at: number; ok: boolean; error: string | null } | null;
  readonly checks: readonly { check: string; status: string; summary: string; checkedAt: number }[];
  readonly queue: readonly { destination: string; pending: number; dead: number; done: number; oldestPendingAgeMs: number | null }[];
  readonly chain: readonly { hostId: string; seq: number; headHash: string }[];
  readonly orders: { lastSequence: number | null; accepted: number; rejected: number };
}

/** Everything `compliance-agent status` shows, read from the state database only. */
export function readStatus(db: StateDb, now: number): AgentStatus {
  const poll = getKv(db, 'last_poll');
  const checks = (db.prepare('SELECT check_name, status, result, checked_at FROM check_results ORDER BY check_name').all() as {
    check_name: string;
    status: string;
    result: string;
    checked_at: number;
  }[]).map((r) => ({ check: r.check_name, status: r.status, summary: (JSON.parse(r.result) as { summary?: string }).summary ?? '', checkedAt: r.checked_at }));
  const queue = (db
    .prepare(
      `SELECT destination,
              SUM(state = 'pending') AS pending, SUM(state = 'dead') AS dead, SUM(state = 'done') AS done,
              MIN(CASE WHEN state = 'pending' THEN created_at END) AS oldest
         FROM outbox GROUP BY destination ORDER BY destination`,
    )
    .all() as { destination: string; pending: number; dead: number; done: number; oldest: number | null }[]).map((q) => ({
    destination: q.destination,
    pending: q.pending,
    dead: q.dead,
    done: q.done,
    oldestPendingAgeMs: q.oldest === null ? null : now - q.oldest,
  }));
  const chain = (db.prepare('SELECT host_id, seq, head_hash FROM chain_head ORDER BY host_id').all() as { host_id: string; seq: number; head_hash: string }[]).map((c) => ({
    hostId: c.host_id,
    seq: c.seq,
    headHash: c.head_hash,
  }));
  const seqRow = db.prepare('SELECT MAX(last_sequence) AS s FROM order_sequence').get() as { s: number | null };
  const counts = db.prepare("SELECT SUM(decision = 'accepted') AS a, SUM(decision != 'accepted') AS r FROM orders_seen").get() as { a: number | null; r: number | null };
  return {
    lastPoll: poll ? (JSON.parse(poll) as AgentStatus['lastPoll']) : null,
    checks,
    queue,
    chain,
    orders: { lastSequence: seqRow.s, accepted: counts.a ?? 0, rejected: counts.r ?? 0 },
  };
}

function age(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
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
  out.push(`orders:      ${s.orders.accepted} accepted, ${s.orders.rejected} rejected, last sequence ${s.orders.lastSequence ?? '-'}`);
  return out.join('\n') + '\n';
}
