import type { Config, Baseline } from '../config/index.js';
import { getCheck, type CheckContext, type CheckName, type CheckResult } from '../checks/index.js';
import type { ActionTaken } from '../evidence/index.js';
import type { ExecResult, Host } from '../host/index.js';
import type { Logger } from '../common/index.js';
import type { Order } from '../orders/index.js';
import { actionCommand, actionKey, isSwitch, type HealAction, type UnitAction } from './actions.js';
import { performSwitch, switchToGeneration, type SwitchDeps } from './activate.js';
import { waitHealthy } from './health.js';
import type { HealResult } from './spool.js';
import { generationInfo, type GenerationInfo } from './system-state.js';

export interface HealTimeouts {
  /** nixos-rebuild switch --flake: builds may download and compile. */
  readonly switchMs: number;
  readonly rollbackMs: number;
  readonly restartMs: number;
  /** systemctl start of the backup unit waits for the backup to finish. */
  readonly backupMs: number;
}

const DEFAULT_HEAL_TIMEOUTS: HealTimeouts = { switchMs: 3_600_000, rollbackMs: 1_800_000, restartMs: 300_000, backupMs: 6 * 3_600_000 };

/** What acting on one request needs: the host, the config and baseline, and how long to wait. */
export interface RunDeps {
  readonly host: Host;
  readonly config: Config;
  readonly baseline: Baseline;
  readonly logger?: Logger;
  /** How the health check waits between polls; tests move a simulated clock instead. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly timeouts?: Partial<HealTimeouts>;
  readonly healthPollMs?: number;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function lastLine(text: string): string {
  const line = text.trim().split('\n').pop() ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

function describeExec(r: ExecResult, timeoutMs: number): string {
  switch (r.status) {
    case 'ok':
      return 'succeeded';
    case 'nonzero':
      return `exited ${r.exitCode}${lastLine(r.stderr) ? ` (${lastLine(r.stderr)})` : ''}`;
    case 'timeout':
      return `did not finish within ${Math.round(timeoutMs / 1000)} s and was killed`;
    case 'missing':
      return 'is not installed';
    case 'error':
      return `could not run${lastLine(r.stderr) ? ` (${lastLine(r.stderr)})` : ''}`;
  }
}

export type ActOutcome = Pick<HealResult, 'outcome' | 'reason'>;

/** The privileged side, for one request: act, health-check, roll back. */
export class RequestRun {
  private readonly taken: ActionTaken[] = [];
  private readonly ctx: CheckContext;
  private readonly timeouts: HealTimeouts;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly deps: RunDeps,
    private readonly requestId: string,
  ) {
    this.ctx = { host: deps.host, config: deps.config, baseline: deps.baseline };
    this.timeouts = { ...DEFAULT_HEAL_TIMEOUTS, ...deps.timeouts };
    this.sleep = deps.sleep ?? realSleep;
  }

  private timeoutFor(a: UnitAction): number {
    return { restart_unit: this.timeouts.restartMs, start_backup: this.timeouts.backupMs }[a.kind];
  }

  private readonly exec = async (command: string, args: readonly string[], timeoutMs: number): Promise<ExecResult> => {
    this.deps.logger?.info({ request_id: this.requestId, command, args }, 'healer action');
    const result = await this.deps.host.exec(command, args, { timeoutMs });
    this.taken.push({ command, args: [...args], status: result.status, exit_code: result.exitCode, duration_ms: result.durationMs });
    return result;
  };

  private async run(a: UnitAction): Promise<{ result: ExecResult; text: string }> {
    const { command, args } = actionCommand(a);
    const timeoutMs = this.timeoutFor(a);
    const result = await this.exec(command, args, timeoutMs);
    return { result, text: `${actionKey(a)} ${describeExec(result, timeoutMs)}` };
  }

  private get switchDeps(): SwitchDeps {
    return {
      host: this.deps.host,
      config: this.deps.config,
      baseline: this.deps.baseline,
      exec: this.exec,
      describe: (command, args, r, timeoutMs) => `${[command, ...args].join(' ')} ${describeExec(r, timeoutMs)}`,
      timeouts: { buildMs: this.timeouts.switchMs, activateMs: this.timeouts.rollbackMs },
    };
  }

  /** Back to exactly the generation recorded before this request switched, and to the system that ran then. */
  private async rollBack(why: string, pre: GenerationInfo): Promise<ActOutcome> {
    if (pre.generation === null) return { outcome: 'failed', reason: `${why}; no rollback: the generation before the switch was not known` };
    const { result, text } = await switchToGeneration(this.switchDeps, pre.generation);
    const after = await generationInfo(this.deps.host);
    if (result.status === 'ok' && after.generation === pre.generation && (pre.system === null || after.system === pre.system)) {
      return { outcome: 'rolled_back', reason: `${why}; rolled back to generation ${after.generation ?? '?'}` };
    }
    return { outcome: 'failed', reason: `${why}; rollback failed too: ${text}, running generation ${after.generation ?? '?'}` };
  }

  private health(mustBeHealthy: readonly CheckName[], expectRevision: string | null) {
    return waitHealthy(
      this.ctx,
      { mustBeHealthy, expectRevision },
      {
        timeoutMs: this.deps.config.rebuildHealthCheckTimeout * 1000,
        pollMs: this.deps.healthPollMs ?? 5000,
        sleep: this.sleep,
      },
    );
  }

  /**
   * Act. A switch must be followed by a healthy system within rebuildHealthCheckTimeout: the
   * baseline's units up, the order's targets compliant, what was compliant before still so, and
   * the signed revision running; otherwise roll back. A switch that fails without activating
   * anything leaves nothing to roll back, and the evidence says so.
   */
  async act(order: Order, actions: readonly HealAction[], pre: GenerationInfo, preResults: readonly CheckResult[]): Promise<ActOutcome> {
    const targets = order.type === 'heal' ? order.params.checks.filter((c) => getCheck(c)?.heal.kind !== 'report_only') : [];
    const expectRevision = order.type === 'apply_baseline' || order.type === 'apply_closure' ? order.params.revision : null;
    const leavesBaseline = order.type === 'rollback' || (expectRevision !== null && expectRevision !== this.deps.baseline.patching.configurationRevision);
    // Patching and firewall follow the configuration itself: a switch away from the baseline changes them by design.
    const stay = preResults.filter((r) => r.status === 'compliant' && !(leavesBaseline && (r.check === 'patching' || r.check === 'firewall'))).map((r) => r.check);
    const timeoutS = this.deps.config.rebuildHealthCheckTimeout;

    for (const a of actions) {
      const ran = isSwitch(a) ? await performSwitch(this.switchDeps, a, pre.generation) : await this.run(a);
      // Refused before anything changed: not built, not trusted, or not the signed revision.
      if ('refused' in ran) return ran.refused;
      const { result, text } = ran;
      if (!isSwitch(a)) continue;
      const after = await generationInfo(this.deps.host);
      const moved = after.generation !== pre.generation || after.system !== pre.system;
      if (result.status !== 'ok') {
        if (!moved) return { outcome: 'failed', reason: `${text}; nothing was activated, still on generation ${pre.generation ?? '?'}` };
        return this.rollBack(`${text} after activating generation ${after.generation ?? '?'}`, pre);
      }
      const health = await this.health([...stay, ...targets], expectRevision);
      if (!health.healthy) {
        const why = `health check failed within ${timeoutS} s after switching to generation ${after.generation ?? '?'}: ${health.problems.join('; ')}`;
        // A failed rollback order has nowhere safer to go: report it, do not roll back again.
        if (a.kind === 'rollback') return { outcome: 'failed', reason: why };
        return this.rollBack(why, pre);
      }
    }
    const health = await this.health(targets, expectRevision);
    const summary = this.taken.map((t) => `${[t.command, ...t.args].join(' ')}: ${t.status}`).join('; ');
    if (health.healthy) return { outcome: 'healed', reason: summary };
    return { outcome: 'failed', reason: `${summary}; still unhealthy after ${timeoutS} s: ${health.problems.join('; ')}` };
  }

  get actionsTaken(): ActionTaken[] {
    return [...this.taken];
  }
}
