import type { Config } from '../config/index.js';
import type { Check, CheckContext, CheckName, CheckResult } from './types.js';
import { RUNNING_SYSTEM, SYSTEM_PROFILE } from './patching.js';

/**
 * The agent's checks whose answer cannot change from one cycle to the next without a switch (or a
 * reboot, which restarts the agent and empties this memory), and the clock, which moves slowly:
 * a compliant result of theirs is reused until its key fact changes or its interval has passed,
 * so an idle cycle spawns no process for them. Drift and errors are never reused. A reused result
 * keeps the time it was observed (`reusedFrom`). The healer never uses this: it checks fresh.
 */
interface Cadence {
  /** Read from files, never by a command: what the result depends on besides the clock. */
  readonly key: (ctx: CheckContext) => Promise<string>;
  readonly intervalMs: (config: Config) => number;
}

const stable = (config: Config): number => config.stableCheckInterval * 1000;

const CADENCES: Partial<Record<CheckName, Cadence>> = {
  // nixos-version answers for the running system: a switch changes the link before anything else.
  patching: { key: async (ctx) => JSON.stringify([await ctx.host.realpath(RUNNING_SYSTEM), await ctx.host.readlink(SYSTEM_PROFILE)]), intervalMs: stable },
  // A switch may bring other file systems or crypttab entries; a mount changed by hand waits for the interval.
  encryption: { key: async (ctx) => JSON.stringify(await ctx.host.realpath(RUNNING_SYSTEM)), intervalMs: stable },
  time: { key: () => Promise.resolve(''), intervalMs: (config) => config.timeCheckInterval * 1000 },
};

interface Kept {
  readonly key: string;
  readonly at: number;
  readonly result: CheckResult;
}

/** One agent's memory of reusable results; `wrap` gives checks that consult it. */
export class CheckCadence {
  private readonly kept = new Map<CheckName, Kept>();

  wrap(checks: readonly Check[]): Check[] {
    return checks.map((check) => {
      const cadence = CADENCES[check.name];
      return cadence ? { ...check, run: (ctx: CheckContext) => this.runKept(check, cadence, ctx) } : check;
    });
  }

  private async runKept(check: Check, cadence: Cadence, ctx: CheckContext): Promise<CheckResult> {
    const at = ctx.host.now();
    const key = await cadence.key(ctx);
    const prev = this.kept.get(check.name);
    // Either way round: a clock stepped back must not keep a result longer than its interval.
    if (prev && prev.key === key && Math.abs(at - prev.at) < cadence.intervalMs(ctx.config)) {
      return { ...prev.result, reusedFrom: prev.at, durationMs: 0 };
    }
    const result = await check.run(ctx);
    if (result.status === 'compliant') this.kept.set(check.name, { key, at, result });
    else this.kept.delete(check.name);
    return result;
  }
}
