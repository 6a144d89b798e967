import { randomUUID } from 'node:crypto';
import { describeError, isoSeconds, silentLogger, type Logger } from '../common/index.js';
import type { Baseline } from '../config/index.js';
import type { CheckResult } from '../checks/index.js';
import type { Envelope } from '../crypto/index.js';
import type { EvidenceSpec } from '../evidence/index.js';
import { ORDER_CONTROLS, type Order } from '../orders/index.js';
import type { StateDb } from '../state/index.js';
import { actionKey } from './actions.js';
import { cannotHeal, controlsFor, evidenceCheckName, planHeal, type HealPlan } from './plan.js';
import type { Spool } from './request-spool.js';
import type { HealResult } from './spool.js';
import { stateSnapshot } from './system-state.js';

export interface HealingDeps {
  readonly baseline: Baseline;
  readonly db: StateDb;
  readonly spool: Spool;
  readonly logger?: Logger;
}

/** What healing needs of the agent's cycle: this cycle's fresh check results and its time. */
export interface HealingContext {
  readonly results: readonly CheckResult[];
  readonly now: number;
}

export interface Requested {
  /** Set when a heal request was written for the healer; its result comes back through `collect`. */
  readonly requestId: string | null;
  /** Evidence when no request was written: nothing to heal, or the request could not be written. */
  readonly specs: EvidenceSpec[];
}

export interface Collected {
  readonly specs: EvidenceSpec[];
  /** Mark the results read, in the agent's database: call inside the transaction that chains their evidence. */
  record(): void;
  /** Remove the answered requests from the drop box: call after that transaction committed. */
  ack(): void;
}

/** A request the healer has not answered by then is reported as failed (and reported once). */
export const HEAL_RESULT_BOUND_MS = 3_600_000;
/** The agent's own leftovers in the drop box (a temp file of a killed write) go after this. */
const STRAY_AGE_MS = 600_000;
/** A request still unanswered this long after it was reported overdue is withdrawn. */
const WITHDRAW_AFTER_MS = 7 * 86_400_000;
/** Read-result records outlive the healer's own month of keeping results. */
const SEEN_MEMORY_MS = 60 * 86_400_000;

/** The agent's memory of the healer's answers: results read, requests reported overdue. */
function statements(db: StateDb) {
  return {
    seen: db.prepare('SELECT 1 FROM heal_results_seen WHERE result_id = ?'),
    answered: db.prepare('SELECT 1 FROM heal_results_seen WHERE request_id = ?'),
    overdueAt: db.prepare('SELECT reported_at FROM heal_requests_overdue WHERE request_id = ?'),
    markSeen: db.prepare('INSERT OR IGNORE INTO heal_results_seen (result_id, request_id, seen_at) VALUES (?, ?, ?)'),
    markOverdue: db.prepare('INSERT OR IGNORE INTO heal_requests_overdue (request_id, reported_at) VALUES (?, ?)'),
    forgetSeen: db.prepare('DELETE FROM heal_results_seen WHERE seen_at < ?'),
    forgetOverdue: db.prepare('DELETE FROM heal_requests_overdue WHERE request_id = ?'),
  };
}

function healResultEvidence(r: HealResult): EvidenceSpec {
  return {
    check: r.check,
    outcome: r.outcome,
    startedAt: Date.parse(r.started_at),
    endedAt: Date.parse(r.finished_at),
    controls: r.controls,
    preState: r.pre_state,
    postState: r.post_state,
    actions: r.action_taken,
    rollbackAvailable: r.rollback_available,
    reason: r.reason,
    orderId: r.order_id,
  };
}

/**
 * The unprivileged half of healing: plan a verified order from the cycle's check results and drop
 * a request for the root healer, then turn the healer's answers into evidence. Timing is the
 * healer's: it acts at once, holds the order for the window in its own state (deferral), runs
 * what it held once the window opens (promotion), or refuses. Nothing here runs a command, and
 * nothing here can make the healer do more than the signed order allows. Every method returns
 * evidence specs; the agent turns them into bundles.
 */
export class Healing {
  private readonly logger: Logger;
  private readonly sql: ReturnType<typeof statements>;

  constructor(private readonly deps: HealingDeps) {
    this.logger = deps.logger ?? silentLogger;
    this.sql = statements(deps.db);
  }

  /**
   * An accepted order that changes the system: plan it from the cycle's results and drop the
   * request, with the envelope exactly as the MCP relayed it, for the healer to verify again.
   */
  request(order: Order, envelope: Envelope, ctx: HealingContext): Requested {
    const plan = planHeal(order, this.deps.baseline, ctx.results);
    if (plan.actions.length === 0) return { requestId: null, specs: [nothingToDo(order, plan, ctx)] };
    const requestId = randomUUID();
    try {
      this.deps.spool.write({
        version: 1,
        request_id: requestId,
        created_at: isoSeconds(ctx.now),
        envelope,
        plan: { order_id: order.order_id, actions: [...plan.actions] },
      });
    } catch (e) {
      // The order is already recorded as seen: say in evidence that it could not be carried out.
      this.logger.error({ order_id: order.order_id }, `could not spool the heal: ${describeError(e)}`);
      return { requestId: null, specs: [notRequested(order, plan, ctx, e)] };
    }
    this.logger.info({ order_id: order.order_id, request_id: requestId, actions: plan.actions.map(actionKey) }, 'heal request written for the healer');
    return { requestId, specs: [] };
  }

  /**
   * The healer's new results as evidence, then failed evidence for the requests it has not
   * answered (results first: a request answered in this batch is not overdue). A result is read
   * once: `record` marks it in the agent's database in the transaction that chains its evidence;
   * `ack` then removes the answered requests from the drop box.
   */
  collect(ctx: HealingContext): Collected {
    try {
      return this.collectFrom(ctx);
    } catch (e) {
      // The healer's tree unreadable is no reason to stop checks and evidence: said each cycle, retried.
      this.logger.error({ heal_dir: this.deps.spool.paths.root }, `cannot read the healer's results: ${describeError(e)}`);
      return { specs: [], record() {}, ack() {} };
    }
  }

  private collectFrom(ctx: HealingContext): Collected {
    const { spool } = this.deps;
    const read = this.newResults();
    const answered = new Set(read.flatMap((r) => (r.request_id ? [r.request_id] : [])));
    const late = this.overdue(answered, ctx);
    return {
      specs: [...read.map(healResultEvidence), ...late.specs],
      record: () => {
        for (const r of read) this.sql.markSeen.run(r.result_id, r.request_id, ctx.now);
        for (const id of late.ids) this.sql.markOverdue.run(id, ctx.now);
        this.sql.forgetSeen.run(ctx.now - SEEN_MEMORY_MS);
      },
      ack: () => {
        for (const id of answered) {
          spool.remove(`${id}.json`);
          this.sql.forgetOverdue.run(id);
        }
        for (const name of late.withdraw) spool.remove(name);
      },
    };
  }

  /** Results the agent has not recorded as read, by file name; an unreadable one is left for inspection. */
  private newResults(): HealResult[] {
    const read: HealResult[] = [];
    for (const name of this.deps.spool.resultNames()) {
      if (this.sql.seen.get(name.slice(0, -5)) !== undefined) continue;
      const r = this.deps.spool.readResult(name);
      if (!r.ok) {
        this.logger.error({ file: name }, `unreadable heal result (${r.message}); leaving it for inspection`);
        continue;
      }
      read.push(r.result);
    }
    return read;
  }

  /** Requests the healer has not answered within HEAL_RESULT_BOUND_MS: failed evidence, once each. */
  private overdue(answered: ReadonlySet<string>, ctx: HealingContext): { specs: EvidenceSpec[]; ids: string[]; withdraw: string[] } {
    const specs: EvidenceSpec[] = [];
    const ids: string[] = [];
    const withdraw: string[] = [];
    const own = this.deps.spool.ownEntries();
    for (const r of own.requests) {
      if (answered.has(r.id) || this.sql.answered.get(r.id) !== undefined) continue;
      // File times are the real clock's; so is this comparison.
      const age = Date.now() - r.mtimeMs;
      const reported = this.sql.overdueAt.get(r.id) as { reported_at: number } | undefined;
      if (reported) {
        if (ctx.now - reported.reported_at > WITHDRAW_AFTER_MS) withdraw.push(`${r.id}.json`);
        continue;
      }
      if (age < HEAL_RESULT_BOUND_MS) continue;
      ids.push(r.id);
      specs.push({
        check: 'order',
        outcome: 'failed',
        startedAt: ctx.now,
        endedAt: ctx.now,
        controls: ORDER_CONTROLS,
        actions: [],
        reason: `heal request ${r.id} has no result from the healer after ${Math.round(age / 60_000)} min (is compliance-agent-heal running?); it stays in the drop box for the healer`,
      });
    }
    // Leftovers of the agent's own interrupted writes, once no write can still be under way.
    for (const st of own.strays) if (Date.now() - st.mtimeMs > STRAY_AGE_MS) withdraw.push(st.name);
    return { specs, ids, withdraw };
  }
}

/** Evidence for a plan with nothing to act on: all compliant, or only drift the repertoire cannot heal. */
function nothingToDo(order: Order, plan: HealPlan, ctx: HealingContext): EvidenceSpec {
  const preState = stateSnapshot(
    null,
    ctx.results.filter((r) => plan.checks.includes(r.check)),
  );
  const unhealable = cannotHeal(plan);
  return {
    check: evidenceCheckName(plan.checks),
    outcome: unhealable ? 'failed' : 'compliant',
    startedAt: ctx.now,
    endedAt: ctx.now,
    controls: controlsFor(plan.checks),
    preState,
    postState: preState,
    actions: [],
    reason: unhealable ?? `nothing to heal: ${plan.checks.join(', ')} compliant`,
    orderId: order.order_id,
  };
}

/** Evidence for an accepted order whose request could not be written. */
function notRequested(order: Order, plan: HealPlan, ctx: HealingContext, e: unknown): EvidenceSpec {
  return {
    check: evidenceCheckName(plan.checks),
    outcome: 'failed',
    startedAt: ctx.now,
    endedAt: ctx.now,
    controls: controlsFor(plan.checks),
    actions: [],
    reason: `accepted but not carried out: could not write the heal request (${describeError(e)})`,
    orderId: order.order_id,
  };
}
