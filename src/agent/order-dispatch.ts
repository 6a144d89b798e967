import { AgentError, silentLogger, type Logger } from '../common/index.js';
import type { Baseline, Config } from '../config/index.js';
import { getCheck, type CheckResult } from '../checks/index.js';
import { EnvelopeSchema, type Envelope } from '../crypto/index.js';
import type { EvidenceSpec } from '../evidence/index.js';
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
  type OrderState,
  type RateLimit,
} from '../orders/index.js';
import type { StateDb } from '../state/index.js';
import type { HealingContext, Requested } from '../heal/index.js';
import { checkOutcome } from './due-check-evidence.js';

/** What the dispatch needs of healing (src/heal's Healing): a request for an order that changes the system. */
export interface HealRequester {
  request(order: Order, envelope: Envelope, ctx: HealingContext): Requested;
}

export interface OrderDispatchDeps {
  readonly config: Config;
  readonly baseline: Baseline;
  readonly db: StateDb;
  readonly healing: HealRequester;
  readonly rejectionLimit?: RateLimit;
  readonly logger?: Logger;
}

export interface HandledOrder {
  readonly accepted: boolean;
  readonly specs: EvidenceSpec[];
  /** Set when a heal request was written for the healer. */
  readonly requestId: string | null;
}

/**
 * Where an order goes once verified: a heartbeat is liveness only, `run_checks` reports the
 * cycle's results, every other type (heal, apply_baseline, apply_closure, rollback) is a request
 * for the root healer. A refused order is counted and reported within the rejection rate limit.
 */
export class OrderDispatch {
  private readonly logger: Logger;
  private readonly state: OrderState;

  constructor(private readonly deps: OrderDispatchDeps) {
    this.logger = deps.logger ?? silentLogger;
    this.state = sqliteOrderState(deps.db);
  }

  /** An untrusted envelope in, evidence specs out. */
  handle(envelope: unknown, ctx: HealingContext): HandledOrder {
    const { config, baseline, db } = this.deps;
    const decision = verifyOrder(envelope, verifyContextFromConfig(config, ctx.now, baseline), this.state);
    if (decision.decision === 'rejected') {
      this.logger.warn({ reason: decision.reason, order_id: decision.orderId }, `order rejected: ${decision.message}`);
      countRejection(db, decision.reason);
      const admission = admitRejection(db, ctx.now, this.deps.rejectionLimit ?? DEFAULT_REJECTION_LIMIT);
      return { accepted: false, specs: admission.emit ? [rejectionEvidence(decision, admission, ctx.now)] : [], requestId: null };
    }
    const order = decision.order;
    this.logger.info({ order_id: order.order_id, type: order.type, keyid: decision.keyid }, 'order accepted');
    switch (order.type) {
      // Liveness only: verifying it recorded its issued_at as the newest MSP-signed time; nothing to do.
      case 'heartbeat':
        return { accepted: true, specs: [], requestId: null };
      case 'run_checks':
        return { accepted: true, specs: runChecksEvidence(order, ctx), requestId: null };
      default: {
        const env = reparse(envelope);
        if (!env) throw new AgentError('order_envelope', `accepted order ${order.order_id}: its envelope did not parse again for the heal request`);
        return { accepted: true, ...this.deps.healing.request(order, env, ctx) };
      }
    }
  }
}

/** A run_checks order: one bundle per asked-for check, from the results of this cycle. */
function runChecksEvidence(order: Extract<Order, { type: 'run_checks' }>, ctx: HealingContext): EvidenceSpec[] {
  const wanted = order.params.checks;
  return ctx.results
    .filter((r) => !wanted || wanted.includes(r.check))
    .map((r: CheckResult) => ({
      check: r.check,
      outcome: checkOutcome(r.status),
      startedAt: ctx.now,
      endedAt: ctx.now,
      controls: [...new Set([...(getCheck(r.check)?.controls ?? []), ...ORDER_CONTROLS])],
      preState: { status: r.status, summary: r.summary, observed: r.observed, expected: r.expected },
      actions: [],
      reason: r.summary,
      orderId: order.order_id,
    }));
}

/** The envelope as the MCP relayed it (an object, or its JSON text), for the healer to verify again. */
function reparse(input: unknown): Envelope | null {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      return null;
    }
  }
  const parsed = EnvelopeSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
