import type { StateDb } from '../state/index.js';
import { getKv, setKv } from '../state/index.js';

/**
 * How deliveries to one destination have been going, kept in the state database so `status`
 * can show it and a restarted agent does not log a failure it already logged as new.
 */
export interface DeliveryHealth {
  readonly destination: string;
  readonly state: 'ok' | 'failing';
  /** What kind of failure is going on (`connection_refused`, `tls`, `http_503`, ...); null when ok. */
  readonly kind: string | null;
  /** The last failure's one-line reason and time; kept after recovery. */
  readonly lastError: string | null;
  readonly lastErrorAt: number | null;
  readonly failingSince: number | null;
  /** Failed flushes since failingSince. */
  readonly failures: number;
  /** Bundles dead-lettered since failingSince. */
  readonly deadLettered: number;
  readonly lastOkAt: number | null;
  /** When the last log line about this failure was written, and failed flushes since. */
  readonly loggedAt: number | null;
  readonly failuresSinceLog: number;
  /** When a line last named each kind of this failure, so kinds that alternate are not logged each time. */
  readonly kindsLoggedAt?: Readonly<Record<string, number>>;
}

/** What one flush of a destination saw: bundles delivered, the retryable error that stopped it, dead letters. */
export interface FlushOutcome {
  readonly delivered: number;
  readonly error: string | null;
  readonly rejected: readonly string[];
  readonly dead: number;
}

export interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

const KEY = 'delivery_health:';

export function readDeliveryHealth(db: StateDb, destination: string): DeliveryHealth | null {
  const text = getKv(db, KEY + destination);
  return text ? (JSON.parse(text) as DeliveryHealth) : null;
}

export function writeDeliveryHealth(db: StateDb, health: DeliveryHealth): void {
  setKv(db, KEY + health.destination, JSON.stringify(health));
}

/**
 * A failure reason's kind, from the one-line reasons the sinks and the MCP client write (they name
 * the HTTP status or the transport error the same way everywhere).
 */
export function failureKind(reason: string): string {
  const status = /\b(?:answered|refused with|HTTP) (\d{3})\b/.exec(reason);
  if (status) return `http_${status[1]}`;
  if (/\bTLS to \S+ failed\b/.test(reason)) return 'tls';
  if (/\(ECONNREFUSED\)/.test(reason)) return 'connection_refused';
  if (/\bunreachable\b/.test(reason)) return 'unreachable';
  if (/\bcannot resolve\b/.test(reason)) return 'dns';
  if (/\btimed out\b|\bwithin \d+ ms\b|\bstalled\b/.test(reason)) return 'timeout';
  if (/\bwas (?:lost|reset)\b/.test(reason)) return 'connection_lost';
  if (/^MCP refused\b/.test(reason)) return 'rejected';
  return 'other';
}

function duration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

const HINT = 'see compliance-agent dead-letters list';

/**
 * The next health of a destination after a flush, and the log line it is worth, if any: the first
 * failure of a kind, then a summary every `summaryEveryMs` while failures go on, and one line on
 * recovery. A flush with nothing to do changes nothing.
 */
export function nextDeliveryHealth(
  prev: DeliveryHealth | null,
  destination: string,
  outcome: FlushOutcome,
  now: number,
  summaryEveryMs: number,
): { health: DeliveryHealth; line: LogLine | null } {
  const base: DeliveryHealth = prev ?? {
    destination,
    state: 'ok',
    kind: null,
    lastError: null,
    lastErrorAt: null,
    failingSince: null,
    failures: 0,
    deadLettered: 0,
    lastOkAt: null,
    loggedAt: null,
    failuresSinceLog: 0,
  };
  const reason = outcome.error ?? outcome.rejected[outcome.rejected.length - 1] ?? null;
  if (reason === null && outcome.dead === 0) {
    if (outcome.delivered === 0) return { health: base, line: null };
    const health: DeliveryHealth = {
      ...base,
      state: 'ok',
      kind: null,
      failingSince: null,
      failures: 0,
      deadLettered: 0,
      lastOkAt: now,
      loggedAt: null,
      failuresSinceLog: 0,
      kindsLoggedAt: {},
    };
    if (base.state !== 'failing') return { health, line: null };
    const since = base.failingSince ?? now;
    return {
      health,
      line: {
        level: 'info',
        fields: { destination, recoveredFrom: base.kind, failures: base.failures, failingForS: Math.round(Math.abs(now - since) / 1000) },
        msg: `${destination} delivery recovered after ${duration(now - since)} (${base.failures} failed attempt(s)${base.deadLettered ? `, ${base.deadLettered} bundle(s) dead-lettered` : ''})`,
      },
    };
  }
  const why = reason ?? 'gave up on bundles after too many attempts';
  const kind = failureKind(why);
  const continuing = base.state === 'failing';
  const failingSince = continuing ? (base.failingSince ?? now) : now;
  const failures = (continuing ? base.failures : 0) + 1;
  const deadLettered = (continuing ? base.deadLettered : 0) + outcome.dead;
  const common = { ...base, state: 'failing' as const, kind, lastError: why, lastErrorAt: now, failingSince, failures, deadLettered };
  const dead = outcome.dead > 0 ? `; ${outcome.dead} bundle(s) dead-lettered, ${HINT}` : '';
  const fields = { destination, kind, failures, deadLettered, failingSince: new Date(failingSince).toISOString() };
  const level = outcome.dead > 0 ? 'error' : 'warn';
  // Either way round, so a clock stepped back does not silence the lines.
  const recent = (at: number | null | undefined): boolean => at !== null && at !== undefined && Math.abs(now - at) < summaryEveryMs;
  const kinds = continuing ? (base.kindsLoggedAt ?? {}) : {};
  const logged = { ...common, loggedAt: now, failuresSinceLog: 0, kindsLoggedAt: { ...kinds, [kind]: now } };
  if (!continuing || (base.kind !== kind && !recent(kinds[kind]))) {
    return { health: logged, line: { level, fields, msg: `${destination} delivery failing: ${why}${dead}` } };
  }
  if (!recent(base.loggedAt)) {
    return {
      health: logged,
      line: {
        level,
        fields,
        msg: `${destination} delivery still failing after ${duration(now - failingSince)} (${failures} failed attempt(s), ${base.failuresSinceLog + 1} since the last line${deadLettered ? `, ${deadLettered} bundle(s) dead-lettered` : ''}): ${why}${dead}`,
      },
    };
  }
  return { health: { ...common, failuresSinceLog: base.failuresSinceLog + 1 }, line: null };
}
