import { randomUUID } from 'node:crypto';
import { describeError, isoSeconds, silentLogger, type Logger } from '../common/index.js';
import type { Baseline } from '../config/index.js';
import { runChecks, type CheckResult } from '../checks/index.js';
import type { PublicKey } from '../crypto/index.js';
import { checkOrder, verifyContextFromConfig, type Order } from '../orders/index.js';
import { healLayout, type HealLayout } from '../state/index.js';
import { actionKey, allowedActions, type HealAction } from './actions.js';
import { HealerState, type OrderRow } from './healer-state.js';
import { cannotHeal, controlsFor, evidenceCheckName, orderChecks, planHeal, timingFor, type Timing } from './plan.js';
import { RequestRun, type ActOutcome, type RunDeps } from './request-run.js';
import { assertRootOnlyDir, listNames, openDropBox, readAgentFile, removeOlderThan, removeStaleTemps, writeRootFile, type DirHandle, type Identity } from './safe-fs.js';
import { HealRequestSchema, MAX_SPOOL_FILE, describeIssues, entryId, safeReason, HealResultSchema, type HealRequest, type HealResult } from './spool.js';
import { generationInfo, stateSnapshot, type GenerationInfo } from './system-state.js';
import { parseWindow, type MaintenanceWindow } from './window.js';

export interface HealerDeps extends RunDeps {
  /** Defaults to config.trustedOrderKeys. */
  readonly trustedKeys?: readonly PublicKey[];
  /** The agent's uid and gid: the drop box's group, and the only owner a request file may have. */
  readonly agent: Identity;
}

export interface HealerRun {
  readonly results: ReadonlyArray<{ readonly path: string; readonly result: HealResult }>;
  /** Names in the drop box that are not requests: never opened, never removed, counted. */
  readonly ignored: number;
}

/**
 * The plan must be a subset of what the order and the baseline allow, with nothing twice: the
 * healer re-derives every action itself and trusts nothing else the agent wrote.
 */
function planProblem(plan: HealRequest['plan'], order: Order, baseline: Baseline): string | null {
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

/** New requests read per run; a flood of files waits for later runs instead of holding this one. */
const MAX_REQUESTS_PER_RUN = 256;
/** Names looked at per run in the drop box. */
const MAX_NAMES = 4096;
/** Results the agent has not read by then are removed by the healer (from its own directory). */
const RESULT_KEEP_MS = 30 * 86_400_000;

type Draft = Omit<HealResult, 'result_id' | 'finished_at'>;

/** The latest time an order may act: its signed execute_by, or else its expiry. */
function deadlineOf(order: Order): number {
  return Date.parse(order.execute_by ?? order.expires_at);
}

/** One healer run over the drop box and the held orders, with the state it answers from. */
class Healer {
  readonly results: Array<{ path: string; result: HealResult }> = [];
  private readonly now: () => number;
  /** config.maintenanceWindow, parsed once per run. */
  private readonly window: MaintenanceWindow;

  constructor(
    private readonly deps: HealerDeps,
    private readonly state: HealerState,
    private readonly paths: HealLayout,
    private readonly logger: Logger,
  ) {
    this.now = () => deps.host.now();
    this.window = parseWindow(deps.config.maintenanceWindow);
  }

  private blank(requestId: string | null, startedAt: number, order: Order | null = null): Draft {
    const checks = order ? orderChecks(order) : [];
    return {
      version: 1,
      request_id: requestId,
      order_id: order?.order_id ?? null,
      check: order ? evidenceCheckName(checks) : 'order',
      outcome: 'rejected',
      reason: null,
      started_at: isoSeconds(startedAt),
      pre_state: null,
      action_taken: [],
      post_state: null,
      rollback_available: false,
      controls: controlsFor(checks),
    };
  }

  private verifyContext(at: number) {
    return { ...verifyContextFromConfig(this.deps.config, at, this.deps.baseline), ...(this.deps.trustedKeys ? { trustedKeys: this.deps.trustedKeys } : {}) };
  }

  /** Write a result (root-only directory, the agent's group may read it) and log it on one line. */
  write(draft: Draft): HealResult {
    const resultId = randomUUID();
    const candidate = { ...draft, result_id: resultId, reason: draft.reason === null ? null : safeReason(draft.reason), finished_at: isoSeconds(this.now()) };
    const parsed = HealResultSchema.safeParse(candidate);
    // Never lose what was done: a result that does not validate keeps its actions and says why.
    const result: HealResult = parsed.success
      ? parsed.data
      : {
          ...candidate,
          pre_state: null,
          post_state: null,
          outcome: 'failed',
          reason: safeReason(`healer error: the result did not validate (${describeIssues(parsed.error.issues)})`),
        };
    const path = writeRootFile(this.paths.results, `${resultId}.json`, JSON.stringify(result, null, 2) + '\n', { mode: 0o640, group: this.deps.agent.gid });
    this.logger.info({ request_id: result.request_id, order_id: result.order_id, outcome: result.outcome }, `heal ${result.outcome}${result.reason ? `: ${result.reason}` : ''}`);
    this.results.push({ path, result });
    return result;
  }

  private answer(requestId: string, draft: Draft): void {
    this.write(draft);
    this.state.recordAnswered(requestId, draft.outcome, this.now());
  }

  /** Orders begun and never finished (the healer was killed): reported once, never run again. */
  recoverInterrupted(): void {
    for (const row of this.state.ordersIn('applying')) {
      this.write({
        ...this.blank(row.requestId, this.now()),
        order_id: row.orderId,
        outcome: 'failed',
        reason: `interrupted: the healer stopped while applying order ${row.orderId} and recorded no result; it is never applied twice${row.preGeneration === null ? '' : `; generation ${row.preGeneration} was running when it began`}`,
      });
      this.state.setOrderState(row.orderId, 'interrupted', this.now());
    }
  }

  /** Read the new requests in the drop box; answer each on its own, so one bad file blocks nothing. */
  async takeRequests(box: DirHandle): Promise<number> {
    const { names, more } = listNames(box, MAX_NAMES);
    let ignored = 0;
    const fresh: string[] = [];
    for (const n of names) {
      const id = entryId(n);
      if (!id) ignored++;
      else if (!this.state.requestAnswered(id)) fresh.push(id);
    }
    // Names are never logged: they are the agent's to choose, newlines included.
    if (ignored > 0 || more) this.logger.warn({ ignored, more }, 'drop box entries that are not request names were ignored');
    fresh.sort();
    if (fresh.length > MAX_REQUESTS_PER_RUN)
      this.logger.warn({ waiting: fresh.length - MAX_REQUESTS_PER_RUN }, 'more new requests than one run takes; the rest wait for the next run');
    const accepted: Array<{ id: string; req: HealRequest; order: Order }> = [];
    for (const id of fresh.slice(0, MAX_REQUESTS_PER_RUN)) {
      try {
        const r = this.readRequest(box, id);
        if ('draft' in r) this.answer(id, r.draft);
        else accepted.push({ id, ...r });
      } catch (e) {
        this.answer(id, { ...this.blank(id, this.now()), outcome: 'failed', reason: `healer error: ${describeError(e)}` });
      }
    }
    // Sequence order, as the MCP issued them: the agent's file names decide nothing.
    accepted.sort((a, b) => a.order.sequence - b.order.sequence);
    for (const a of accepted) await this.handleRequest(a.id, a.req, a.order);
    return ignored;
  }

  private readRequest(box: DirHandle, id: string): { draft: Draft } | { req: HealRequest; order: Order } {
    const startedAt = this.now();
    const refuse = (reason: string, order: Order | null = null) => ({ draft: { ...this.blank(id, startedAt, order), reason } });
    const read = readAgentFile(box, `${id}.json`, this.deps.agent.uid, MAX_SPOOL_FILE);
    if (!read.ok) return refuse(`bad_request: ${read.message}`);
    let value: unknown;
    try {
      value = JSON.parse(read.text);
    } catch {
      return refuse('bad_request: not JSON');
    }
    const parsed = HealRequestSchema.safeParse(value);
    if (!parsed.success) return refuse(`bad_request: ${describeIssues(parsed.error.issues)}`);
    const req = parsed.data;
    if (req.request_id !== id) return refuse('bad_request: request_id does not match the file name');
    const check = checkOrder(req.envelope, this.verifyContext(startedAt));
    if (check.decision === 'rejected') return { draft: { ...this.blank(id, startedAt), order_id: check.orderId, reason: `${check.reason}: ${check.message}` } };
    return { req, order: check.order };
  }

  /** A verified request: replay and sequence against root's own state, then act, hold or refuse. */
  private async handleRequest(id: string, req: HealRequest, order: Order): Promise<void> {
    const startedAt = this.now();
    const base = this.blank(id, startedAt, order);
    const run = new RequestRun(this.deps, id);
    try {
      const known = this.state.order(order.order_id);
      if (known) {
        const what = known.state === 'held' ? 'is held by the healer for the maintenance window' : `was already received by the healer (${known.state})`;
        return this.answer(id, { ...base, reason: `replayed: order ${order.order_id} ${what}` });
      }
      const last = this.state.lastSequence(order.site_id);
      if (last !== null && order.sequence <= last) {
        return this.answer(id, { ...base, reason: `stale_sequence: sequence ${order.sequence} is not above ${last}, the last the healer recorded for site ${order.site_id}` });
      }
      const problem = planProblem(req.plan, order, this.deps.baseline);
      if (problem) return this.answer(id, { ...base, reason: `plan_not_allowed: ${problem}` });

      const { preResults, pre, preState, timing } = await this.assess(req.plan.actions);
      if (!timing.act) return this.defer(id, req, order, base, timing, pre, preState);
      this.state.recordOrder(order, id, 'applying', req.envelope, this.now());
      await this.apply(run, base, order, req.plan.actions, pre, preResults, preState);
    } catch (e) {
      this.answer(id, { ...base, outcome: 'failed', reason: `healer error: ${describeError(e)}`, action_taken: run.actionsTaken });
    }
  }

  /**
   * Not now (the window is closed or the clock in doubt): hold the order in root's own state, up to
   * its deadline, and say so in a `deferred` result; one whose window opens only after its
   * deadline fails at once instead of waiting. `promote` runs what was held.
   */
  private defer(id: string, req: HealRequest, order: Order, base: Draft, timing: Extract<Timing, { act: false }>, pre: GenerationInfo, preState: Record<string, unknown>): void {
    const deadline = deadlineOf(order);
    this.state.recordOrder(order, id, 'held', req.envelope, this.now());
    if (timing.retryAt !== null && timing.retryAt > deadline) {
      this.state.setOrderState(order.order_id, 'dropped', this.now());
      return this.answer(id, {
        ...base,
        outcome: 'failed',
        pre_state: preState,
        reason: `${timing.reason}, after ${isoSeconds(deadline)}, the latest this order may run (execute_by, or expires_at): not applied`,
      });
    }
    this.answer(id, {
      ...base,
      outcome: 'deferred',
      pre_state: preState,
      rollback_available: pre.rollbackAvailable,
      reason: `${timing.reason}; held by the healer until ${isoSeconds(deadline)} at the latest`,
    });
  }

  private async assess(actions: readonly HealAction[]) {
    const { host, config, baseline } = this.deps;
    const [preResults, pre] = await Promise.all([runChecks({ host, config, baseline }), generationInfo(host)]);
    const preState = stateSnapshot(pre, preResults, { planned: actions.map(actionKey) });
    const timing = timingFor(actions, config, this.window, preResults, host.now());
    return { preResults, pre, preState, timing };
  }

  /** The order is recorded as applying before the first action: a crash reads as interrupted, never as new. */
  private async apply(
    run: RequestRun,
    base: Draft,
    order: Order,
    actions: readonly HealAction[],
    pre: GenerationInfo,
    preResults: readonly CheckResult[],
    preState: Record<string, unknown>,
  ): Promise<void> {
    const { host, config, baseline } = this.deps;
    this.state.recordPreGeneration(order.order_id, pre.generation, this.now());
    let outcome: ActOutcome;
    try {
      outcome = await run.act(order, actions, pre, preResults);
    } catch (e) {
      outcome = { outcome: 'failed', reason: `healer error: ${describeError(e)}` };
    }
    let post: Pick<HealResult, 'post_state' | 'rollback_available'> = { post_state: null, rollback_available: false };
    try {
      const [postResults, after] = await Promise.all([runChecks({ host, config, baseline }), generationInfo(host)]);
      post = { post_state: stateSnapshot(after, postResults), rollback_available: after.rollbackAvailable };
    } catch (e) {
      this.logger.error({ order_id: order.order_id }, `post-state unavailable: ${safeReason(describeError(e))}`);
    }
    this.write({ ...base, ...outcome, pre_state: preState, action_taken: run.actionsTaken, ...post });
    if (base.request_id) this.state.recordAnswered(base.request_id, outcome.outcome, this.now());
    this.state.setOrderState(order.order_id, 'done', this.now());
  }

  /**
   * Orders held for the window: re-verified as of when root first recorded them (the signature,
   * a key still trusted, this site and host), then acted on once the window and the clock allow,
   * re-planned from root's own check results. Past execute_by (or expires_at) they are dropped.
   */
  async promote(): Promise<void> {
    for (const row of this.state.ordersIn('held')) {
      const startedAt = this.now();
      const run = new RequestRun(this.deps, row.requestId);
      let base: Draft = { ...this.blank(row.requestId, startedAt), order_id: row.orderId };
      try {
        const check = checkOrder(row.envelope, this.verifyContext(row.firstSeenAt));
        if (check.decision === 'rejected') {
          this.state.setOrderState(row.orderId, 'dropped', startedAt);
          this.write({ ...base, outcome: 'failed', reason: `held order no longer valid, not applied: ${check.reason}: ${check.message}` });
          continue;
        }
        const order = check.order;
        base = this.blank(row.requestId, startedAt, order);
        const ahead = Date.parse(order.issued_at) - startedAt;
        // The clock stepped back since root recorded it: an order from "the future" does not run.
        if (ahead > this.deps.config.ntpMaxSkewMs) {
          this.state.setOrderState(row.orderId, 'dropped', startedAt);
          this.write({
            ...base,
            outcome: 'failed',
            reason: `held order no longer valid, not applied: issued_in_future: issued_at is ${ahead} ms ahead of this clock (allowed ${this.deps.config.ntpMaxSkewMs} ms)`,
          });
          continue;
        }
        const deadline = deadlineOf(order);
        if (startedAt > deadline) {
          this.state.setOrderState(row.orderId, 'dropped', startedAt);
          this.write({
            ...base,
            outcome: 'failed',
            reason: `held since ${isoSeconds(row.firstSeenAt)}, not applied: the window did not open with a sane clock before ${isoSeconds(deadline)} (execute_by, or expires_at)`,
          });
          continue;
        }
        await this.promoteOne(run, base, row, order);
      } catch (e) {
        this.state.setOrderState(row.orderId, 'dropped', this.now());
        this.write({ ...base, outcome: 'failed', reason: `healer error: ${describeError(e)}`, action_taken: run.actionsTaken });
      }
    }
  }

  private async promoteOne(run: RequestRun, base: Draft, row: OrderRow, order: Order): Promise<void> {
    const { host, config, baseline } = this.deps;
    const results = await runChecks({ host, config, baseline });
    const plan = planHeal(order, baseline, results);
    if (plan.actions.length === 0) {
      const unhealable = cannotHeal(plan);
      this.state.setOrderState(row.orderId, 'done', this.now());
      this.write({
        ...base,
        outcome: unhealable ? 'failed' : 'compliant',
        pre_state: stateSnapshot(null, results),
        post_state: stateSnapshot(null, results),
        reason: unhealable ?? `nothing left to heal when the window opened: ${plan.checks.join(', ')} compliant`,
      });
      return;
    }
    const { preResults, pre, preState, timing } = await this.assess(plan.actions);
    // Still outside the window or the clock still in doubt: stay held, quietly (the deferral is in evidence).
    if (!timing.act) return;
    if (!this.state.claimHeld(row.orderId, this.now())) return;
    await this.apply(run, base, order, plan.actions, pre, preResults, preState);
  }
}

/** Where the healer's tree is wrong, the healer does not start: an AgentError, loud. */
function assertTree(paths: HealLayout, rootUid: number): void {
  assertRootOnlyDir(paths.root, rootUid);
  assertRootOnlyDir(paths.state, rootUid, { private: true });
  assertRootOnlyDir(paths.results, rootUid);
}

/**
 * `heal-apply`: answer every new request in the drop box and run the held orders whose window
 * has opened. Nothing here trusts a path the agent can change: the tree is checked before use,
 * the drop box is read through one descriptor, and everything written goes to root's own
 * directories. The state is root's own; a missing one is refused, never read as empty.
 */
export async function applyHealRequests(deps: HealerDeps): Promise<HealerRun> {
  const logger = deps.logger ?? silentLogger;
  const paths = healLayout(deps.config.healDir);
  const rootUid = process.getuid?.() ?? 0;
  assertTree(paths, rootUid);
  const state = HealerState.open(paths.healerDb);
  try {
    removeStaleTemps(paths.results);
    removeStaleTemps(paths.state);
    const healer = new Healer({ ...deps, logger }, state, paths, logger);
    healer.recoverInterrupted();
    const box = openDropBox(paths.requests, rootUid, deps.agent.gid);
    let ignored: number;
    try {
      ignored = await healer.takeRequests(box);
    } finally {
      box.close();
    }
    await healer.promote();
    // File times against the real clock, both from this machine: results the agent had a month to read go.
    removeOlderThan(paths.results, Date.now() - RESULT_KEEP_MS);
    state.forgetOldRequests(deps.host.now());
    return { results: healer.results, ignored };
  } finally {
    state.close();
  }
}
