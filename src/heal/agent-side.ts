import { randomUUID } from 'node:crypto';
import { AgentError, describeError, isoSeconds, silentLogger, type Logger } from '../common/index.js';
import type { Baseline, Config } from '../config/index.js';
import { getCheck, type CheckResult, type SystemFacts } from '../checks/index.js';
import type { EvidenceDraft, EvidenceSpec } from '../evidence/index.js';
import {
  admitRejection,
  checkOrder,
  countRejection,
  rejectionEvidence,
  sqliteOrderState,
  verifyContextFromConfig,
  verifyOrder,
  DEFAULT_REJECTION_LIMIT,
  ORDER_CONTROLS,
  type Order,
  type RateLimit,
} from '../orders/index.js';
import type { StateDb } from '../state/index.js';
import { actionKey } from './actions.js';
import { clockSanity } from './clock.js';
import { controlsFor, decideTiming, evidenceCheckName, planHeal, type HealPlan } from './plan.js';
import {
  HealResultSchema,
  PendingHealSchema,
  asEnvelope,
  ensureSpool,
  listSpool,
  readSpoolFile,
  removeSpoolFile,
  spoolPaths,
  writeHealRequest,
  writePending,
  type HealResult,
} from './spool.js';
import { stateSnapshot } from './system-state.js';
import { parseWindow } from './window.js';
import type { Envelope } from '../crypto/index.js';

export interface AgentHealingDeps {
  readonly config: Config;
  readonly baseline: Baseline;
  readonly db: StateDb;
  /** The agent's bundle builder: adds site, host, mode and system facts to what heal/ knows. */
  readonly makeDraft: (facts: SystemFacts, spec: EvidenceSpec) => EvidenceDraft;
  readonly rejectionLimit?: RateLimit;
  readonly logger?: Logger;
}

export interface CycleContext {
  readonly results: readonly CheckResult[];
  readonly facts: SystemFacts;
  readonly now: number;
}

export interface HandledOrder {
  readonly accepted: boolean;
  readonly drafts: EvidenceDraft[];
  /** Set when a heal request was written for the healer. */
  readonly requestId: string | null;
}

export interface CollectedResults {
  readonly drafts: EvidenceDraft[];
  /** Remove the consumed result files; call after the drafts are durably chained. */
  ack(): void;
  readonly promoted: readonly string[];
}


function checkOutcome(r: CheckResult): EvidenceSpec['outcome'] {
  return r.status === 'compliant' ? 'compliant' : r.status === 'drift' ? 'drift_detected' : 'failed';
}

export function healResultEvidence(r: HealResult): EvidenceSpec {
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
 * The healer's finished results as evidence specs. `ack` removes the files: call it only after the
 * drafts made from them are durably chained, so a crash in between re-reads rather than loses them.
 */
export function collectHealResults(stateDir: string, logger: Logger = silentLogger): { items: Array<{ path: string; result: HealResult; spec: EvidenceSpec }>; ack(): void } {
  const items: Array<{ path: string; result: HealResult; spec: EvidenceSpec }> = [];
  for (const path of listSpool(spoolPaths(stateDir).results).valid) {
    const read = readSpoolFile(path);
    const parsed = read.ok ? HealResultSchema.safeParse(read.value) : null;
    if (!parsed?.success) {
      logger.error({ file: path }, 'unreadable heal result; leaving it for inspection');
      continue;
    }
    items.push({ path, result: parsed.data, spec: healResultEvidence(parsed.data) });
  }
  return { items, ack: () => items.forEach((i) => removeSpoolFile(i.path)) };
}

/**
 * The unprivileged half of healing (DESIGN 3, 4): verify an order, plan from the cycle's check
 * results, defer what the window or the clock forbids, spool the rest for the healer, and turn
 * the healer's results into evidence. Nothing here runs a command.
 */
export function createAgentHealing(deps: AgentHealingDeps) {
  const { config, baseline, db } = deps;
  const logger = deps.logger ?? silentLogger;
  const window = parseWindow(config.maintenanceWindow);
  const state = sqliteOrderState(db);
  ensureSpool(config.stateDir);
  const paths = spoolPaths(config.stateDir);

  /** Write a request, or defer; returns the evidence for a deferral, nothing when spooled. */
  function schedule(order: Order, envelope: Envelope, plan: HealPlan, ctx: CycleContext): { spec: EvidenceSpec | null; requestId: string | null } {
    const preState = stateSnapshot(null, ctx.results.filter((r) => plan.checks.includes(r.check)), { planned: plan.actions.map(actionKey) });
    const timing = decideTiming(plan.actions, {
      window,
      allowDisruptiveOutsideWindow: config.allowDisruptiveOutsideWindow,
      clock: clockSanity(ctx.results, config.ntpMaxSkewMs),
      now: ctx.now,
    });
    if (!timing.act) {
      writePending(config.stateDir, { version: 1, order_id: order.order_id, deferred_at: isoSeconds(ctx.now), reason: timing.reason, envelope });
      return {
        spec: { check: evidenceCheckName(plan.checks), outcome: 'deferred', startedAt: ctx.now, endedAt: ctx.now, controls: controlsFor(plan.checks), preState, actions: [], reason: timing.reason, orderId: order.order_id },
        requestId: null,
      };
    }
    const requestId = randomUUID();
    writeHealRequest(config.stateDir, {
      version: 1,
      request_id: requestId,
      created_at: isoSeconds(ctx.now),
      envelope,
      plan: { order_id: order.order_id, actions: [...plan.actions] },
    });
    logger.info({ order_id: order.order_id, request_id: requestId, actions: plan.actions.map(actionKey) }, 'heal request written for the healer');
    return { spec: null, requestId };
  }

  /** Evidence for a plan with nothing to act on: all compliant, or only drift the repertoire cannot heal. */
  function nothingToDo(order: Order, plan: HealPlan, ctx: CycleContext): EvidenceSpec {
    const preState = stateSnapshot(null, ctx.results.filter((r) => plan.checks.includes(r.check)));
    const reason = plan.unhealable.length
      ? `cannot heal: ${plan.unhealable.map((u) => `${u.check}: ${u.why}`).join('; ')}`
      : `nothing to heal: ${plan.checks.join(', ')} compliant`;
    return {
      check: evidenceCheckName(plan.checks),
      outcome: plan.unhealable.length ? 'failed' : 'compliant',
      startedAt: ctx.now,
      endedAt: ctx.now,
      controls: controlsFor(plan.checks),
      preState,
      postState: preState,
      actions: [],
      reason,
      orderId: order.order_id,
    };
  }

  /** Matches the agent's OrderHandler: an untrusted envelope in, evidence drafts out. */
  async function handleOrder(envelope: unknown, ctx: CycleContext): Promise<HandledOrder> {
    const decision = verifyOrder(envelope, verifyContextFromConfig(config, ctx.now, baseline), state);
    if (decision.decision === 'rejected') {
      logger.warn({ reason: decision.reason, order_id: decision.orderId }, `order rejected: ${decision.message}`);
      countRejection(db, decision.reason);
      const admission = admitRejection(db, ctx.now, deps.rejectionLimit ?? DEFAULT_REJECTION_LIMIT);
      return { accepted: false, drafts: admission.emit ? [deps.makeDraft(ctx.facts, rejectionEvidence(decision, admission, ctx.now))] : [], requestId: null };
    }
    const order = decision.order;
    logger.info({ order_id: order.order_id, type: order.type, keyid: decision.keyid }, 'order accepted');
    if (order.type === 'run_checks') {
      const wanted = order.params.checks;
      const selected = ctx.results.filter((r) => !wanted || wanted.includes(r.check));
      const drafts = selected.map((r) =>
        deps.makeDraft(ctx.facts, {
          check: r.check,
          outcome: checkOutcome(r),
          startedAt: ctx.now,
          endedAt: ctx.now,
          controls: [...new Set([...(getCheck(r.check)?.controls ?? []), ...ORDER_CONTROLS])],
          preState: { status: r.status, summary: r.summary, observed: r.observed, expected: r.expected },
          actions: [],
          reason: r.summary,
          orderId: order.order_id,
        }),
      );
      return { accepted: true, drafts, requestId: null };
    }
    const env = asEnvelope(envelope);
    if (!env) throw new AgentError('order_envelope', `accepted order ${order.order_id}: its envelope did not parse again for the heal request`);
    const plan = planHeal(order, baseline, ctx.results);
    if (plan.actions.length === 0) return { accepted: true, drafts: [deps.makeDraft(ctx.facts, nothingToDo(order, plan, ctx))], requestId: null };
    try {
      const { spec, requestId } = schedule(order, env, plan, ctx);
      return { accepted: true, drafts: spec ? [deps.makeDraft(ctx.facts, spec)] : [], requestId };
    } catch (e) {
      // The order is already recorded as seen: say in evidence that it could not be carried out.
      logger.error({ order_id: order.order_id }, `could not spool the heal: ${describeError(e)}`);
      const spec: EvidenceSpec = {
        check: evidenceCheckName(plan.checks),
        outcome: 'failed',
        startedAt: ctx.now,
        endedAt: ctx.now,
        controls: controlsFor(plan.checks),
        actions: [],
        reason: `accepted but not carried out: could not write the heal request (${describeError(e)})`,
        orderId: order.order_id,
      };
      return { accepted: true, drafts: [deps.makeDraft(ctx.facts, spec)], requestId: null };
    }
  }

  /**
   * Retry deferred orders whose window has opened (re-planned on fresh results), and drop with
   * evidence those that expired or lost their key meanwhile. Call before running the healer.
   */
  async function promote(ctx: CycleContext): Promise<{ drafts: EvidenceDraft[]; promoted: string[] }> {
    const drafts: EvidenceDraft[] = [];
    const promoted: string[] = [];
    for (const path of listSpool(paths.pending).valid) {
      const read = readSpoolFile(path);
      const pending = read.ok ? PendingHealSchema.safeParse(read.value) : null;
      if (!pending?.success) {
        logger.error({ file: path }, 'unreadable pending heal; removing it');
        removeSpoolFile(path);
        continue;
      }
      const p = pending.data;
      // Stateless re-check: expiry, and a key removed from config since, both end the wait.
      const check = checkOrder(p.envelope, verifyContextFromConfig(config, ctx.now, baseline));
      if (check.decision === 'rejected') {
        drafts.push(
          deps.makeDraft(ctx.facts, {
            check: 'order',
            outcome: 'failed',
            startedAt: ctx.now,
            endedAt: ctx.now,
            controls: ORDER_CONTROLS,
            actions: [],
            reason: `deferred order no longer valid, not applied: ${check.reason}: ${check.message} (deferred at ${p.deferred_at}: ${p.reason})`,
            orderId: p.order_id,
          }),
        );
        removeSpoolFile(path);
        continue;
      }
      const plan = planHeal(check.order, baseline, ctx.results);
      if (plan.actions.length === 0) {
        drafts.push(deps.makeDraft(ctx.facts, nothingToDo(check.order, plan, ctx)));
        removeSpoolFile(path);
        continue;
      }
      try {
        const timing = decideTiming(plan.actions, {
          window,
          allowDisruptiveOutsideWindow: config.allowDisruptiveOutsideWindow,
          clock: clockSanity(ctx.results, config.ntpMaxSkewMs),
          now: ctx.now,
        });
        // Still deferred: stay quiet, the deferral is already in evidence.
        if (!timing.act) continue;
        const { requestId } = schedule(check.order, p.envelope, plan, ctx);
        removeSpoolFile(path);
        if (requestId) promoted.push(requestId);
      } catch (e) {
        logger.error({ order_id: p.order_id }, `could not spool a deferred heal: ${describeError(e)}`);
      }
    }
    return { drafts, promoted };
  }

  /**
   * The healer's results as evidence drafts; a `deferred` result goes back to pending. Results stay
   * on disk until `ack`, so call this once per cycle, after the healer ran: a second call before
   * `ack` returns the same results again.
   */
  async function collectResults(ctx: CycleContext): Promise<{ drafts: EvidenceDraft[]; ack(): void }> {
    const finished = collectHealResults(config.stateDir, logger);
    const drafts: EvidenceDraft[] = [];
    for (const { result: r, spec } of finished.items) {
      drafts.push(deps.makeDraft(ctx.facts, spec));
      if (r.outcome === 'deferred' && r.retry_envelope && r.order_id) {
        writePending(config.stateDir, { version: 1, order_id: r.order_id, deferred_at: r.finished_at, reason: r.reason ?? 'deferred by the healer', envelope: r.retry_envelope });
      }
    }
    return { drafts, ack: finished.ack };
  }

  /** collectResults then promote, for a cycle whose healer runs elsewhere (the path unit). */
  async function collect(ctx: CycleContext): Promise<CollectedResults> {
    const results = await collectResults(ctx);
    const pending = await promote(ctx);
    return { drafts: [...results.drafts, ...pending.drafts], promoted: pending.promoted, ack: results.ack };
  }

  return { handleOrder, promote, collectResults, collect };
}

export type AgentHealing = ReturnType<typeof createAgentHealing>;
