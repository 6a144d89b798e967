import type { CheckResult, CheckStatus, Check } from '../checks/index.js';
import type { Config } from '../config/index.js';
import type { EvidenceSpec, Outcome } from '../evidence/index.js';
import type { StateDb } from '../state/index.js';
import { isoSeconds } from '../common/index.js';

const OUTCOME: Record<CheckStatus, Outcome> = { compliant: 'compliant', drift: 'drift_detected', error: 'failed' };

/** A check's status as the evidence outcome, for the cycle's check bundles and run_checks alike. */
export function checkOutcome(status: CheckStatus): Outcome {
  return OUTCOME[status];
}

/**
 * What makes a check's state "changed": its status and, for drift, which units drifted, for errors
 * the message. Measured values (an offset in ms, a backup age) move every cycle and are not a change.
 */
function fingerprint(r: CheckResult): string {
  return JSON.stringify([r.status, r.status === 'drift' ? [...(r.driftUnits ?? [])].sort() : null, r.status === 'error' ? r.summary : null]);
}

interface StoredResult {
  check_name: string;
  status: string;
  result: string;
  last_emitted_at: number | null;
}

/**
 * The check results due as evidence this cycle: state changed, or heartbeatInterval passed since
 * the last bundle for that check. `record` stores every result, due or not, for `status`.
 */
export function dueCheckEvidence(
  db: StateDb,
  config: Pick<Config, 'heartbeatInterval'>,
  checks: readonly Check[],
  results: readonly CheckResult[],
  startedAt: number,
  now: number,
): { specs: EvidenceSpec[]; record: () => void } {
  const get = db.prepare('SELECT check_name, status, result, last_emitted_at FROM check_results WHERE check_name = ?');
  const put = db.prepare(
    `INSERT INTO check_results (check_name, status, result, checked_at, last_emitted_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT(check_name) DO UPDATE SET status = excluded.status, result = excluded.result, checked_at = excluded.checked_at, last_emitted_at = excluded.last_emitted_at`,
  );
  const specs: EvidenceSpec[] = [];
  const rows: unknown[][] = [];
  for (const r of results) {
    const prev = get.get(r.check) as StoredResult | undefined;
    const prevFingerprint = prev ? (JSON.parse(prev.result) as { fingerprint?: string }).fingerprint : undefined;
    const fp = fingerprint(r);
    // Either way round: a clock stepped back by more than an interval must not silence heartbeats until it catches up.
    const heartbeatDue = !prev?.last_emitted_at || Math.abs(now - prev.last_emitted_at) >= config.heartbeatInterval * 1000;
    const emit = fp !== prevFingerprint || heartbeatDue;
    if (emit) {
      const check = checks.find((c) => c.name === r.check);
      specs.push({
        check: r.check,
        outcome: checkOutcome(r.status),
        // A reused result says when it was observed, not when it was reused.
        startedAt: r.reusedFrom ?? startedAt,
        endedAt: now,
        controls: check?.controls ?? [],
        preState: { summary: r.summary, observed: r.observed, expected: r.expected, ...(r.reusedFrom === undefined ? {} : { reusedFrom: isoSeconds(r.reusedFrom) }) },
        reason: r.status === 'compliant' ? null : r.summary,
      });
    }
    rows.push([
      r.check,
      r.status,
      JSON.stringify({ fingerprint: fp, summary: r.summary, observed: r.observed }),
      r.reusedFrom ?? now,
      emit ? now : (prev?.last_emitted_at ?? null),
    ]);
  }
  // `record` runs in the same transaction that chains the drafts: a crash cannot record a change
  // as seen without its evidence.
  return { specs, record: () => rows.forEach((row) => put.run(...row)) };
}
