import type { CheckContext, CheckName, CheckResult, CheckStatus } from './types.js';

/** Builds a check's result, timing it on the host's clock (the simulated one in tests). */
export function resultMaker(check: CheckName, ctx: CheckContext, expected: Record<string, unknown>) {
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
