import { describeError } from '../common/index.js';
import type { Check, CheckContext, CheckName, CheckResult } from './types.js';

/** A check runs a few commands of EXEC_TIMEOUT_MS each; this bounds a check whose Host misbehaves. */
export const CHECK_TIMEOUT_MS = 60_000;

/** Run one check; never throws: a crash or an overrun becomes an `error` result. */
async function runOne(check: Check, ctx: CheckContext, timeoutMs: number): Promise<CheckResult> {
  const started = ctx.host.now();
  const failed = (summary: string): CheckResult => ({
    check: check.name,
    status: 'error',
    summary,
    observed: {},
    expected: {},
    durationMs: Math.max(0, ctx.host.now() - started),
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve(failed(`${check.name} check did not finish within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([check.run(ctx).catch((e: unknown) => failed(`${check.name} check failed unexpectedly: ${describeError(e)}`)), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runChecksIn(checks: readonly Check[], ctx: CheckContext, names: readonly CheckName[] | undefined, timeoutMs: number): Promise<CheckResult[]> {
  const selected = names ? checks.filter((c) => names.includes(c.name)) : checks;
  return Promise.all(selected.map((c) => runOne(c, ctx, timeoutMs)));
}
