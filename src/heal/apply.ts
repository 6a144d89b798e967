import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AgentError, describeError, isoSeconds, silentLogger, type Logger } from '../common/index.js';
import { explainIssues, type Baseline, type Config } from '../config/index.js';
import { getCheck, runChecks, type CheckContext, type CheckName, type CheckResult } from '../checks/index.js';
import type { PublicKey } from '../crypto/index.js';
import type { ActionTaken } from '../evidence/index.js';
import type { ExecResult, Host } from '../host/index.js';
import { checkOrder, verifyContextFromConfig, type Order } from '../orders/index.js';
import { actionCommand, actionKey, allowedActions, isSwitch, type HealAction, type UnitAction } from './actions.js';
import { performSwitch, switchToGeneration, type SwitchDeps } from './activate.js';
import { AppliedRecord } from './applied.js';
import { clockSanity } from './clock.js';
import { waitHealthy } from './health.js';
import { controlsFor, decideTiming, evidenceCheckName, orderChecks } from './plan.js';
import { HealRequestSchema, listSpool, readSpoolFile, removeSpoolFile, spoolPaths, writeHealResult, type HealRequest, type HealResult } from './spool.js';
import { generationInfo, stateSnapshot, type GenerationInfo } from './system-state.js';
import { parseWindow } from './window.js';

export interface HealTimeouts {
  /** nixos-rebuild switch --flake: builds may download and compile. */
  readonly switchMs: number;
  readonly rollbackMs: number;
  readonly restartMs: number;
  /** systemctl start of the backup unit waits for the backup to finish. */
  readonly backupMs: number;
}

export const DEFAULT_HEAL_TIMEOUTS: HealTimeouts = { switchMs: 3_600_000, rollbackMs: 1_800_000, restartMs: 300_000, backupMs: 6 * 3_600_000 };

export interface HealerDeps {
  readonly host: Host;
  readonly config: Config;
  readonly baseline: Baseline;
  /** Defaults to config.trustedOrderKeys. */
  readonly trustedKeys?: readonly PublicKey[];
  /** The healer's own record of applied requests; default `<stateDir>/heal/applied.json`. */
  readonly appliedPath?: string;
  readonly logger?: Logger;
  /** How the health check waits between polls; tests move a simulated clock instead. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly timeouts?: Partial<HealTimeouts>;
  readonly healthPollMs?: number;
}

export interface HealerRun {
  readonly results: ReadonlyArray<{ readonly path: string; readonly result: HealResult }>;
  /** Files in requests/ that are not requests; removed unread. */
  readonly strays: readonly string[];
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

/**
 * The plan must be a subset of what the order and the baseline allow, with nothing twice: the
 * healer re-derives every action itself and trusts nothing else the agent wrote.
 */
export function planProblem(plan: HealRequest['plan'], order: Order, baseline: Baseline): string | null {
  if (plan.order_id !== order.order_id) return `the plan is for order ${plan.order_id}, the signed order is ${order.order_id}`;
  const allowed = new Set(allowedActions(order, baseline).map(actionKey));
  const seen = new Set<string>();
  for (const a of plan.actions) {
    const key = actionKey(a);
    if (!allowed.has(key)) return `"${key}" is not an action ${order.type} order ${order.order_id} and the baseline allow`;
    if (seen.has(key)) return `"${key}" appears twice`;
    seen.add(key);
  }
  return null;
}

type Outcome = Pick<HealResult, 'outcome' | 'reason'>;

/** The privileged side of DESIGN 4, for one request: verify, plan-check, time-check, act, health-check, roll back. */
class RequestRun {
  private readonly taken: ActionTaken[] = [];
  private readonly ctx: CheckContext;
  private readonly timeouts: HealTimeouts;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly deps: HealerDeps,
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
  private async rollBack(why: string, pre: GenerationInfo): Promise<Outcome> {
    if (pre.generation === null) return { outcome: 'failed', reason: `${why}; no rollback: the generation before the switch was not known` };
    const { result, text } = await switchToGeneration(this.switchDeps, pre.generation);
    const after = await generationInfo(this.deps.host);
    if (result.status === 'ok' && after.generation === pre.generation && (pre.system === null || after.system === pre.system)) {
      return { outcome: 'rolled_back', reason: `${why}; rolled back to generation ${after.generation ?? '?'}` };
    }
    return { outcome: 'failed', reason: `${why}; rollback failed too: ${text}, running generation ${after.generation ?? '?'}` };
  }

  private health(mustBeHealthy: readonly CheckName[], expectRevision: string | null) {
    return waitHealthy(this.ctx, { mustBeHealthy, expectRevision }, {
      timeoutMs: this.deps.config.rebuildHealthCheckTimeout * 1000,
      pollMs: this.deps.healthPollMs ?? 5000,
      sleep: this.sleep,
    });
  }

  /**
   * Act. A switch must be followed by a healthy system within rebuildHealthCheckTimeout: the
   * baseline's units up, the order's targets compliant, what was compliant before still so, and
   * the signed revision running; otherwise roll back. A switch that fails without activating
   * anything leaves nothing to roll back, and the evidence says so.
   */
  async act(order: Order, actions: readonly HealAction[], pre: GenerationInfo, preResults: readonly CheckResult[]): Promise<Outcome> {
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

/** Apply one request file and return its result (not yet written). Never throws. */
async function applyHealRequest(deps: HealerDeps, path: string, applied: AppliedRecord | AgentError): Promise<HealResult> {
  const { host, config, baseline } = deps;
  const requestId = basename(path, '.json');
  const startedAt = host.now();
  let result: Omit<HealResult, 'finished_at'> = {
    version: 1,
    request_id: requestId,
    order_id: null,
    check: 'order',
    outcome: 'rejected',
    reason: null,
    started_at: isoSeconds(startedAt),
    pre_state: null,
    action_taken: [],
    post_state: null,
    rollback_available: false,
    controls: controlsFor([]),
    retry_envelope: null,
  };
  const finish = (fields: Partial<HealResult>): HealResult => ({ ...result, ...fields, finished_at: isoSeconds(host.now()) });
  const run = new RequestRun(deps, requestId);
  try {
    const read = readSpoolFile(path);
    if (!read.ok) return finish({ reason: `bad_request: ${read.message}` });
    const parsed = HealRequestSchema.safeParse(read.value);
    if (!parsed.success) return finish({ reason: `bad_request: ${explainIssues(parsed.error.issues).slice(0, 5).join('; ')}` });
    const req = parsed.data;
    if (req.request_id !== requestId) return finish({ reason: 'bad_request: request_id does not match the file name' });

    if (applied instanceof AgentError) return finish({ outcome: 'failed', reason: applied.message });
    const ctx = { ...verifyContextFromConfig(config, host.now(), baseline), ...(deps.trustedKeys ? { trustedKeys: deps.trustedKeys } : {}) };
    const check = checkOrder(req.envelope, ctx);
    if (check.decision === 'rejected') return finish({ order_id: check.orderId, reason: `${check.reason}: ${check.message}` });
    const order = check.order;
    const checks = orderChecks(order);
    result = { ...result, order_id: order.order_id, check: evidenceCheckName(checks), controls: controlsFor(checks) };

    const replay = applied.lookup(requestId, order.order_id);
    if (replay === 'interrupted') {
      return finish({ outcome: 'failed', reason: 'interrupted: the healer stopped while applying this request and recorded no result; it is never applied twice' });
    }
    if (replay === 'request') return finish({ reason: `replayed: request ${requestId} was already applied by the healer` });
    if (replay === 'order') return finish({ reason: `replayed: order ${order.order_id} was already applied by the healer` });
    const problem = planProblem(req.plan, order, baseline);
    if (problem) return finish({ reason: `plan_not_allowed: ${problem}` });

    const actions = req.plan.actions;
    const [preResults, pre] = await Promise.all([runChecks({ host, config, baseline }), generationInfo(host)]);
    const preState = stateSnapshot(pre, preResults, { planned: actions.map(actionKey) });
    const timing = decideTiming(actions, {
      window: parseWindow(config.maintenanceWindow),
      allowDisruptiveOutsideWindow: config.allowDisruptiveOutsideWindow,
      clock: clockSanity(preResults, config.ntpMaxSkewMs),
      now: host.now(),
    });
    if (!timing.act) {
      return finish({ outcome: 'deferred', reason: timing.reason, pre_state: preState, rollback_available: pre.rollbackAvailable, retry_envelope: req.envelope });
    }

    applied.begin({ request_id: requestId, order_id: order.order_id, applied_at: host.now(), expires_at: Date.parse(order.expires_at) }, host.now());
    const outcome = await run.act(order, actions, pre, preResults);
    const [postResults, post] = await Promise.all([runChecks({ host, config, baseline }), generationInfo(host)]);
    return finish({ ...outcome, pre_state: preState, action_taken: run.actionsTaken, post_state: stateSnapshot(post, postResults), rollback_available: post.rollbackAvailable });
  } catch (e) {
    deps.logger?.error({ request_id: requestId }, `heal request failed: ${describeError(e)}`);
    return finish({ outcome: 'failed', reason: `healer error: ${describeError(e)}`, action_taken: run.actionsTaken });
  }
}

/**
 * `heal-apply`: process every request in the spool, oldest name first, one at a time. Each gets a
 * result file, then its request is removed. A request whose result already exists (the healer
 * stopped between the two) is only removed, never run again.
 */
export async function applyHealRequests(deps: HealerDeps): Promise<HealerRun> {
  const logger = deps.logger ?? silentLogger;
  const paths = spoolPaths(deps.config.stateDir);
  const appliedPath = deps.appliedPath ?? paths.applied;
  const { valid, strays } = listSpool(paths.requests);
  for (const s of strays) {
    logger.warn({ file: s }, 'removing a file in the heal spool that is not a request');
    removeSpoolFile(s);
  }
  const results: Array<{ path: string; result: HealResult }> = [];
  if (valid.length === 0) return { results, strays };
  let applied: AppliedRecord | AgentError;
  try {
    applied = AppliedRecord.load(appliedPath);
  } catch (e) {
    applied = e instanceof AgentError ? e : new AgentError('applied_read', describeError(e));
  }
  for (const path of valid) {
    if (existsSync(join(paths.results, basename(path)))) {
      removeSpoolFile(path);
      continue;
    }
    const result = await applyHealRequest({ ...deps, logger }, path, applied);
    const written = writeHealResult(deps.config.stateDir, result);
    // Done only once its result is durable: a crash before this reads as interrupted, never as new.
    if (applied instanceof AppliedRecord) applied.finish(result.request_id);
    removeSpoolFile(path);
    logger.info({ request_id: result.request_id, order_id: result.order_id, outcome: result.outcome }, `heal request ${result.outcome}${result.reason ? `: ${result.reason}` : ''}`);
    results.push({ path: written, result });
  }
  return { results, strays };
}
