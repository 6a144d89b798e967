import type { CheckResult } from '../checks/index.js';

export type ClockSanity = { sane: true; offsetMs: number | null } | { sane: false; offsetMs: number | null; reason: string };

/**
 * Whether the clock can be trusted for disruptive work, from the `time` check: synchronised and
 * within ntpMaxSkewMs. No result, an error or any drift means not sane: the window and order
 * expiry both depend on the clock, so doubt defers. The observed values are re-read rather than
 * trusting the status alone, so a check and a healer with different limits cannot disagree silently.
 */
export function clockSanity(results: readonly CheckResult[], ntpMaxSkewMs: number): ClockSanity {
  const time = results.find((r) => r.check === 'time');
  const offset = time?.observed.offsetMs;
  const offsetMs = typeof offset === 'number' && Number.isFinite(offset) ? offset : null;
  if (!time) return { sane: false, offsetMs, reason: 'clock not sane: no time check result' };
  if (time.status !== 'compliant') return { sane: false, offsetMs, reason: `clock not sane: ${time.summary}` };
  if (time.observed.synchronised !== true) return { sane: false, offsetMs, reason: 'clock not sane: not NTP-synchronised' };
  if (offsetMs !== null && Math.abs(offsetMs) > ntpMaxSkewMs) {
    return { sane: false, offsetMs, reason: `clock not sane: ${offsetMs} ms off NTP time (limit ${ntpMaxSkewMs} ms)` };
  }
  return { sane: true, offsetMs };
}
