import type { CheckContext, CheckName, CheckResult, CheckStatus } from './types.js';

/**
 * Start a check's result: the clock starts now (the host's, simulated in tests); the returned
 * function takes the verdict and builds the timed CheckResult.
 */
export function startResult(check: CheckName, ctx: CheckContext, expected: Record<string, unknown>) {
  const started = ctx.host.now();
  return (status: CheckStatus, summary: string, observed: Record<string, unknown> = {}, driftUnits?: readonly string[]): CheckResult => ({
    check,
    status,
    summary,
    observed,
    expected,
    ...(driftUnits ? { driftUnits } : {}),
    durationMs: Math.max(0, ctx.host.now() - started),
  });
}
