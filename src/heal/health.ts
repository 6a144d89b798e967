import { runChecks, type CheckContext, type CheckName, type CheckResult } from '../checks/index.js';

export interface HealthSpec {
  /** Checks that must be compliant: services (the baseline's required units) always, plus the heal's targets. */
  readonly mustBeHealthy: readonly CheckName[];
  /** When set, the running configurationRevision must be this (a switch reached what was signed). */
  readonly expectRevision: string | null;
}

export interface HealthOutcome {
  readonly healthy: boolean;
  readonly results: readonly CheckResult[];
  /** What was still wrong at the last poll; empty when healthy. */
  readonly problems: readonly string[];
  readonly polls: number;
}

function healthProblems(results: readonly CheckResult[], spec: HealthSpec): string[] {
  const problems: string[] = [];
  for (const name of new Set<CheckName>(['services', ...spec.mustBeHealthy])) {
    const r = results.find((x) => x.check === name);
    if (!r) problems.push(`${name}: did not run`);
    else if (r.status !== 'compliant') problems.push(`${name}: ${r.summary}`);
  }
  if (spec.expectRevision !== null) {
    const running = results.find((x) => x.check === 'patching')?.observed.configurationRevision;
    if (running !== spec.expectRevision) problems.push(`patching: running revision ${typeof running === 'string' ? running : 'unknown'}, the order expects ${spec.expectRevision}`);
  }
  return problems;
}

/**
 * Poll the checks until the spec holds or `timeoutMs` (rebuildHealthCheckTimeout) passes on the
 * host's clock. Units may still be starting right after a switch, so one failed poll is not a verdict.
 */
export async function waitHealthy(ctx: CheckContext, spec: HealthSpec, opts: { timeoutMs: number; pollMs: number; sleep: (ms: number) => Promise<void> }): Promise<HealthOutcome> {
  const deadline = ctx.host.now() + opts.timeoutMs;
  let polls = 0;
  for (;;) {
    const results = await runChecks(ctx);
    polls++;
    const problems = healthProblems(results, spec);
    if (problems.length === 0) return { healthy: true, results, problems, polls };
    const left = deadline - ctx.host.now();
    if (left <= 0) return { healthy: false, results, problems, polls };
    await opts.sleep(Math.min(opts.pollMs, left));
  }
}
