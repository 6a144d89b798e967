import { randomUUID } from 'node:crypto';
import { AgentError, describeError, isoSeconds, silentLogger, type Logger } from '../common/index.js';
import type { Baseline, Config } from '../config/index.js';
import { getCheck, type CheckResult, type SystemFacts } from '../checks/index.js';
import type { EvidenceDraft, EvidenceSpec } from '../evidence/index.js';
import {
  admitRejection,
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
import { controlsFor, evidenceCheckName, planHeal, type HealPlan } from './plan.js';
import { asEnvelope, listOwnRequests, listResults, readResultFile, removeOwnRequest, writeHealRequest, type HealResult } from './spool.js';
import { stateSnapshot } from './system-state.js';
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
  /** Mark the results read, in the agent's database: call inside the transaction that chains the drafts. */
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
 * The unprivileged half of healing: verify an order, plan from the cycle's check results, drop a
 * request in the healer's drop box, and turn the healer's results into evidence. Nothing here
 * runs a command, and nothing here can make the healer do more than the signed order allows.
 */
export function createAgentHealing(deps: AgentHealingDeps) {
  const { config, baseline, db } = deps;
  const logger = deps.logger ?? silentLogger;
  const state = sqliteOrderState(db);

  /**
   * Drop a request for the healer. Timing is the healer's: it acts now, holds the order for the
   * window in its own state, or refuses, and its result becomes the evidence.
   */
  function schedule(order: Order, envelope: Envelope, plan: HealPlan, ctx: CycleContext): string {
    const requestId = randomUUID();
    writeHealRequest(config.healDir, {
      version: 1,
      request_id: requestId,
      created_at: isoSeconds(ctx.now),
      envelope,
      plan: { order_id: order.order_id, actions: [...plan.actions] },
    });
    logger.info({ order_id: order.order_id, request_id: requestId, actions: plan.actions.map(actionKey) }, 'heal request written for the healer');
    return requestId;
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
    // Liveness only: verifying it recorded its issued_at as the newest MSP-signed time; nothing to do.
    if (order.type === 'heartbeat') return { accepted: true, drafts: [], requestId: null };
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
      return { accepted: true, drafts: [], requestId: schedule(order, env, plan, ctx) };
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

  const seenStmt = db.prepare('SELECT 1 FROM heal_results_seen WHERE result_id = ?');
  const answeredStmt = db.prepare('SELECT 1 FROM heal_results_seen WHERE request_id = ?');
  const overdueStmt = db.prepare('SELECT reported_at FROM heal_requests_overdue WHERE request_id = ?');
  const markSeen = db.prepare('INSERT OR IGNORE INTO heal_results_seen (result_id, request_id, seen_at) VALUES (?, ?, ?)');
  const markOverdue = db.prepare('INSERT OR IGNORE INTO heal_requests_overdue (request_id, reported_at) VALUES (?, ?)');
  const forgetSeen = db.prepare('DELETE FROM heal_results_seen WHERE seen_at < ?');
  const forgetOverdue = db.prepare('DELETE FROM heal_requests_overdue WHERE request_id = ?');

  /** Requests the healer has not answered within HEAL_RESULT_BOUND_MS: failed evidence, once each. */
  function overdue(answered: ReadonlySet<string>, ctx: CycleContext): { specs: EvidenceSpec[]; ids: string[]; withdraw: string[] } {
    const specs: EvidenceSpec[] = [];
    const ids: string[] = [];
    const withdraw: string[] = [];
    const own = listOwnRequests(config.healDir);
    for (const r of own.requests) {
      if (answered.has(r.id) || answeredStmt.get(r.id) !== undefined) continue;
      // File times are the real clock's; so is this comparison.
      const age = Date.now() - r.mtimeMs;
      const reported = overdueStmt.get(r.id) as { reported_at: number } | undefined;
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

  /**
   * The healer's new results as evidence, plus failed evidence for requests it has not answered.
   * A result is read once: `record` marks it in the agent's database in the transaction that
   * chains its evidence; `ack` then removes the answered requests from the drop box.
   */
  async function collectResults(ctx: CycleContext): Promise<CollectedResults> {
    try {
      return collectFrom(ctx);
    } catch (e) {
      // The healer's tree unreadable is no reason to stop checks and evidence: said each cycle, retried.
      logger.error({ heal_dir: config.healDir }, `cannot read the healer's results: ${describeError(e)}`);
      return { drafts: [], record() {}, ack() {} };
    }
  }

  function collectFrom(ctx: CycleContext): CollectedResults {
    const drafts: EvidenceDraft[] = [];
    const read: HealResult[] = [];
    for (const name of listResults(config.healDir)) {
      if (seenStmt.get(name.slice(0, -5)) !== undefined) continue;
      const r = readResultFile(config.healDir, name);
      if (!r.ok) {
        logger.error({ file: name }, `unreadable heal result (${r.message}); leaving it for inspection`);
        continue;
      }
      read.push(r.result);
      drafts.push(deps.makeDraft(ctx.facts, healResultEvidence(r.result)));
    }
    const answered = new Set(read.flatMap((r) => (r.request_id ? [r.request_id] : [])));
    const late = overdue(answered, ctx);
    drafts.push(...late.specs.map((spec) => deps.makeDraft(ctx.facts, spec)));
    return {
      drafts,
      record() {
        for (const r of read) markSeen.run(r.result_id, r.request_id, ctx.now);
        for (const id of late.ids) markOverdue.run(id, ctx.now);
        forgetSeen.run(ctx.now - SEEN_MEMORY_MS);
      },
      ack() {
        for (const id of answered) {
          removeOwnRequest(config.healDir, `${id}.json`);
          forgetOverdue.run(id);
        }
        for (const name of late.withdraw) removeOwnRequest(config.healDir, name);
      },
    };
  }

  return { handleOrder, collectResults };
}

export type AgentHealing = ReturnType<typeof createAgentHealing>;
