import type { Logger } from '../common/index.js';
import { describeError } from '../common/index.js';
import type { Baseline, Config } from '../config/index.js';
import type { Host } from '../host/index.js';
import { stateLayout, stateWriteFailure, storageWrite, type StateDb } from '../state/index.js';
import { ALL_CHECKS, CheckCadence, runChecks, systemFacts, type CheckResult, type SystemFacts } from '../checks/index.js';
import type { Collected, HealingContext } from '../heal/index.js';
import { EvidenceChain, exportEvidence, readChainHead, type EvidenceDraft } from '../evidence/index.js';
import type { SinkDestination } from '../outputs/index.js';
import { Outbox, flushDestination, type Deliver, type Destination, type DeliveryResult } from '../queue/index.js';
import { controlPlaneView, nextDeliveryHealth, readDeliveryHealth, writeDeliveryHealth, writeMetrics, type FlushOutcome } from '../observe/index.js';
import type { SecretKey, Envelope } from '../crypto/index.js';
import type { IdentityAssessment, PollOutcome } from '../identity/index.js';
import { dueCheckEvidence } from './due-check-evidence.js';
import { deadLetterAlerts, operatorActionEvidence } from './delivery-evidence.js';
import { makeDraft } from './drafts.js';
import { assessPoll } from './mcp-health.js';
import type { StartAlerts } from './previous-exit.js';
import { assessControlPlane, assessReceipts, noteBadReceipt } from './control-plane.js';
import { OrderDispatch, type HealRequester } from './order-dispatch.js';

/** What the agent needs from the MCP client (src/mcp implements it over mTLS). */
export interface McpPort {
  /** `envelope` is null when no order is waiting, otherwise the unverified JSON the MCP sent. */
  nextOrder(): Promise<{ ok: true; envelope: unknown } | { ok: false; error: { code: string; message: string } }>;
  /** `budget` aborts the exchange in flight when the cycle's flush budget is spent. */
  postEvidenceBatch(envelopes: Envelope[], budget?: AbortSignal): Promise<DeliveryResult[]>;
}

/** Items per destination per cycle: a backlog drains over cycles, never in one long flush. */
const FLUSH_MAX_ITEMS = 2000;
/** Longest flush per cycle, whatever the MCP's pace: half the poll interval, at most 30 s. */
function defaultFlushBudgetMs(pollIntervalS: number): number {
  return Math.min(30_000, (pollIntervalS * 1000) / 2);
}

/** The unprivileged half of healing (src/heal's Healing): heal requests for orders, the healer's answers as evidence. */
export interface HealingPort extends HealRequester {
  /**
   * The healer's new results as evidence: `record` marks them read inside the transaction that
   * chains the evidence, `ack` tidies the drop box after it committed.
   */
  collect(ctx: HealingContext): Collected;
}

/** The appliance identity (src/identity): enrollment and renewal evidence, renewal, identity alerts, key rotation. */
export interface IdentityPort {
  assess(poll: PollOutcome, now: number, signingKey: SecretKey, chainStarted: boolean): Promise<IdentityAssessment>;
}

export interface AgentDeps {
  readonly config: Config;
  readonly baseline: Baseline;
  readonly host: Host;
  readonly db: StateDb;
  readonly signingKey: SecretKey;
  readonly mcp: McpPort;
  /** Extra reseller destinations (webhook, syslog) and how to deliver to each. */
  readonly sinks?: Partial<Record<SinkDestination, Deliver>>;
  readonly logger: Logger;
  readonly healing: HealingPort;
  /**
   * Runs the root healer over the drop box and its held orders. In production systemd's path
   * unit and timer do that between cycles; the demo and tests pass the in-process healer on the
   * simulated host, run every cycle as the timer would.
   */
  readonly runHealer?: () => Promise<void>;
  readonly metricsPath?: string;
  readonly flushBatchSize?: number;
  /** While a destination keeps failing, a summary line at most this often (default 15 minutes). */
  readonly deliveryLogIntervalMs?: number;
  /** Alerts about the agent itself to chain in its first cycle (how its previous run ended). */
  readonly startAlerts?: StartAlerts;
  /** Absent for an appliance provisioned by hand (no enrollment): its certificate is left as it is. */
  readonly identity?: IdentityPort;
  /** Per-cycle flush budget in (real) ms; default half the poll interval, at most 30 s. */
  readonly flushBudgetMs?: number;
  /** Per-cycle, per-destination item budget; default 2000. */
  readonly flushMaxItems?: number;
}

export interface CycleReport {
  readonly polled: 'order' | 'none' | 'failed';
  readonly results: readonly CheckResult[];
  readonly bundles: number;
  readonly flushed: Partial<Record<Destination, number>>;
  readonly durationMs: number;
}

/** The agent: one cycle runs the stages of the README's "How it works" in order; `run` repeats it. */
export class Agent {
  readonly outbox: Outbox;
  private readonly chain: EvidenceChain;
  private readonly destinations: Destination[];
  private readonly deliver: Partial<Record<Destination, Deliver>>;
  private readonly orders: OrderDispatch;
  /** Compliant results the agent may reuse between idle cycles (patching, encryption, time); never for an order or the healer. */
  private readonly cadence = new CheckCadence();
  private counters = { cycles: 0, bundles: 0, accepted: 0, rejected: 0 };
  private lastPollOk = false;
  private lastPollAt: number | null = null;
  private deadLettered = 0;
  private metricsError: string | null = null;
  private startAlerts: StartAlerts | undefined;
  private signingKey: SecretKey;

  constructor(private readonly deps: AgentDeps) {
    this.signingKey = deps.signingKey;
    // Evidence must survive a 72-hour outage: with a 15-minute backoff cap, 2,000
    // attempts of the head item is about ten days before "too many attempts" dead-letters it.
    this.outbox = new Outbox(deps.db, { maxAttempts: 2000 });
    // One agent owns this database: leases left by a killed predecessor are void, not 60 s waits.
    this.outbox.releaseAll();
    this.chain = new EvidenceChain(deps.db, deps.signingKey, this.outbox);
    this.deliver = {
      mcp: async (items, budget) => {
        const results = await deps.mcp.postEvidenceBatch(
          items.map((i) => JSON.parse(i.body) as Envelope),
          budget,
        );
        const bad = results.find((r) => r.kind === 'retry' && r.badReceipt);
        if (bad?.kind === 'retry') storageWrite('note a refused MCP receipt', () => noteBadReceipt(deps.db, this.now(), bad.error));
        return results;
      },
      ...deps.sinks,
    };
    this.destinations = Object.keys(this.deliver) as Destination[];
    this.startAlerts = deps.startAlerts;
    this.orders = new OrderDispatch({ config: deps.config, baseline: deps.baseline, db: deps.db, healing: deps.healing, logger: deps.logger });
  }

  private now(): number {
    return this.deps.host.now();
  }

  /** One cycle; a failed write to the state directory (full disk, I/O error) ends it with one AgentError naming the directory. */
  async cycle(signal?: AbortSignal): Promise<CycleReport> {
    try {
      return await this.runCycle(signal);
    } catch (e) {
      throw stateWriteFailure(e, this.deps.config.stateDir);
    }
  }

  private async runCycle(signal?: AbortSignal): Promise<CycleReport> {
    const { config, baseline, host, db, logger } = this.deps;
    const started = this.now();
    const drafts: EvidenceDraft[] = [];

    const poll = await this.deps.mcp.nextOrder();
    const pollAt = this.now();
    this.lastPollAt = pollAt;
    this.lastPollOk = poll.ok;
    const health = assessPoll(db, { at: pollAt, ok: poll.ok, error: poll.ok ? null : poll.error.message, code: poll.ok ? null : poll.error.code }, config.heartbeatInterval * 1000);
    if (!poll.ok) logger.warn({ code: poll.error.code }, `MCP poll failed: ${poll.error.message}`);

    let results = await runChecks({ host, config, baseline }, undefined, { cadence: this.cadence });
    const facts = systemFacts(results);
    const checkedAt = this.now();
    const identity = await this.assessIdentity(poll.ok ? { ok: true } : { ok: false, error: poll.error }, facts, checkedAt);
    drafts.push(...identity.drafts);
    const startAlerts = this.startAlerts;
    if (startAlerts) drafts.push(...startAlerts.drafts(facts));

    if (health.alert) {
      drafts.push(
        makeDraft(config, facts, {
          check: 'mcp',
          outcome: health.alert === 'outage' ? 'failed' : 'compliant',
          startedAt: pollAt,
          endedAt: pollAt,
          controls: ['HIPAA 164.308(a)(7)(ii)(B)', 'SOC 2 A1.2'],
          reason: poll.ok ? 'MCP reachable again' : `MCP unreachable, failing closed (no order acted on): ${poll.error.message}`,
        }),
      );
    }

    let polled: CycleReport['polled'] = poll.ok ? 'none' : 'failed';
    if (poll.ok && poll.envelope !== null) {
      polled = 'order';
      // An order (run_checks, a heal's plan) answers for the appliance as it is now: nothing reused.
      if (results.some((r) => r.reusedFrom !== undefined)) results = await runChecks({ host, config, baseline });
      const handled = this.orders.handle(poll.envelope, { results, now: this.now() });
      if (handled.accepted) this.counters.accepted++;
      else this.counters.rejected++;
      const orderFacts = systemFacts(results);
      drafts.push(...handled.specs.map((spec) => makeDraft(config, orderFacts, spec)));
    }
    // After the order: an accepted heartbeat in this poll already counts as fresh.
    const controlPlane = assessControlPlane(db, this.now(), config.controlPlaneMaxAge * 1000, config.heartbeatInterval * 1000);
    const receipts = assessReceipts(db, this.now(), config.heartbeatInterval * 1000);
    for (const spec of [controlPlane.spec, receipts.spec]) if (spec) drafts.push(makeDraft(config, facts, spec));
    // The healer answers first (where it runs in-process), then its answers are collected: a heal
    // requested in this cycle is in this cycle's evidence when the healer acted on it at once.
    if (this.deps.runHealer) await this.deps.runHealer();
    const healed = this.deps.healing.collect({ results, now: this.now() });
    drafts.push(...healed.specs.map((spec) => makeDraft(config, facts, spec)));
    // After a heal the pre-heal results are stale: check again, all of them fresh, so the state evidence is current.
    if (healed.specs.length > 0) results = await runChecks({ host, config, baseline });

    const now = this.now();
    const fromChecks = dueCheckEvidence(db, config, ALL_CHECKS, results, started, now);
    const checkFacts = systemFacts(results);
    drafts.push(...fromChecks.specs.map((spec) => makeDraft(config, checkFacts, spec)));
    const operatorActions = operatorActionEvidence(db, config, checkFacts, now);
    drafts.push(...operatorActions.drafts);
    // IMMEDIATE: `prune` (another process) chains a checkpoint; the head is read and moved under one lock.
    storageWrite(`store ${drafts.length} evidence bundle(s)`, () =>
      db
        .transaction(() => {
          this.chain.append(drafts, this.destinations, now);
          identity.record();
          fromChecks.record();
          health.record();
          operatorActions.record();
          healed.record();
          controlPlane.record();
          receipts.record();
        })
        .immediate(),
    );
    // The drop box is tidied only once the evidence of its answers is durably chained.
    healed.ack();
    if (startAlerts) {
      startAlerts.ack();
      this.startAlerts = undefined;
    }
    this.counters.bundles += drafts.length;
    exportEvidence(db, stateLayout(config.stateDir).evidence);

    const flushed = await this.flush(signal);
    // Alerts for what this flush dead-lettered go out in the same cycle.
    const alerts = this.alertDeadLetters(systemFacts(results));
    if (alerts > 0) {
      for (const [d, n] of Object.entries(await this.flush(signal))) flushed[d as Destination] = (flushed[d as Destination] ?? 0) + n;
    }
    this.counters.cycles++;
    const durationMs = this.now() - started;
    this.writeMetrics(results, durationMs);
    logger.info({ polled, bundles: drafts.length, flushed, durationMs }, 'cycle complete');
    return { polled, results, bundles: drafts.length + alerts, flushed, durationMs };
  }

  /** Chain one alert bundle per destination that dead-lettered bundles; returns how many. */
  private alertDeadLetters(facts: SystemFacts): number {
    const { db, config } = this.deps;
    const now = this.now();
    const found = deadLetterAlerts(db, config, facts, this.destinations, now);
    storageWrite(`store ${found.alerts.length} dead-letter alert(s)`, () =>
      db.transaction(() => {
        for (const a of found.alerts) this.chain.append([a.draft], a.to, now);
        found.record();
      })(),
    );
    this.counters.bundles += found.alerts.length;
    return found.alerts.length;
  }

  /** Bundles dead-lettered by this agent since it started: `once` fails when there were any. */
  get deadLetteredCount(): number {
    return this.deadLettered;
  }

  /**
   * The identity's evidence comes first in the cycle. A staged evidence-key rotation is chained
   * on its own, signed by the current key, before the key changes for every later bundle.
   */
  private async assessIdentity(poll: PollOutcome, facts: SystemFacts, now: number): Promise<{ drafts: EvidenceDraft[]; record: () => void }> {
    const { identity: port, config, db } = this.deps;
    if (!port) return { drafts: [], record: () => undefined };
    let a: IdentityAssessment;
    try {
      a = await port.assess(poll, now, this.signingKey, readChainHead(db, config.hostId).seq > 0);
    } catch (e) {
      // The identity's files are the agent's own; one it cannot read now is logged, and the cycle goes on.
      this.deps.logger.error(`identity check failed: ${describeError(e)}`);
      return { drafts: [], record: () => undefined };
    }
    const rotation = a.rotation;
    if (rotation) {
      storageWrite('chain the evidence key rotation', () =>
        db.transaction(() => {
          this.chain.append([makeDraft(config, facts, rotation.spec)], this.destinations, now);
          rotation.record(db);
        })(),
      );
      this.counters.bundles += 1;
      this.chain.useKey(rotation.key);
      this.signingKey = rotation.key;
      rotation.commit();
      this.deps.logger.info({ keyId: rotation.key.keyId }, 'evidence key rotated');
    }
    return { drafts: a.specs.map((spec) => makeDraft(config, facts, spec)), record: () => a.record() };
  }

  /** Deliver what is due to every destination, each independently: a dead RMM never delays the MCP. */
  async flush(signal?: AbortSignal): Promise<Partial<Record<Destination, number>>> {
    const out: Partial<Record<Destination, number>> = {};
    // The checks and the next poll never wait for a slow MCP beyond this budget.
    const budget = AbortSignal.timeout(this.deps.flushBudgetMs ?? defaultFlushBudgetMs(this.deps.config.pollInterval));
    await Promise.all(
      this.destinations.map(async (d) => {
        try {
          const seen = observed(this.deliver[d]!);
          const r = await flushDestination(this.outbox, d, seen.deliver, {
            // Sinks deliver a batch in order and stop at the first failure, so batching is safe.
            batchSize: d === 'mcp' ? (this.deps.flushBatchSize ?? 200) : 100,
            now: () => this.now(),
            signal,
            budget,
            maxItems: this.deps.flushMaxItems ?? FLUSH_MAX_ITEMS,
          });
          out[d] = r.delivered;
          this.deadLettered += r.dead;
          this.noteDelivery(d, { delivered: r.delivered, dead: r.dead, ...seen.outcome });
        } catch (e) {
          // A flush failure is retried next cycle from the durable queue; nothing is lost.
          this.deps.logger.error({ destination: d }, `flush to ${d} failed: ${describeError(stateWriteFailure(e, this.deps.config.stateDir))}`);
          out[d] = 0;
        }
      }),
    );
    return out;
  }

  /** Keep the destination's health for `status` and log what changed, rate-limited. */
  private noteDelivery(destination: Destination, outcome: FlushOutcome): void {
    const { db, logger } = this.deps;
    const prev = readDeliveryHealth(db, destination);
    const { health, line } = nextDeliveryHealth(prev, destination, outcome, this.now(), this.deps.deliveryLogIntervalMs ?? 15 * 60_000);
    if (health !== prev) storageWrite(`record ${destination} delivery health`, () => writeDeliveryHealth(db, health));
    if (line) logger[line.level](line.fields, line.msg);
  }

  /**
   * Undelivered items for a destination (or every destination in use): `once` exits 0 only when
   * this is 0. Rows left for a sink no longer configured (reseller switched to direct) do not count.
   */
  pending(destination?: Destination): number {
    return this.outbox
      .depth(this.now())
      .filter((s) => (destination ? s.destination === destination : this.destinations.includes(s.destination)))
      .reduce((n, s) => n + s.undelivered, 0);
  }

  /**
   * Metrics are for watching, not evidence: a path that cannot be written (its directory missing,
   * say) costs one warning per distinct error and never the cycle.
   */
  private writeMetrics(results: readonly CheckResult[], cycleDurationMs: number): void {
    if (!this.deps.metricsPath) return;
    try {
      this.writeMetricsFile(this.deps.metricsPath, results, cycleDurationMs);
      this.metricsError = null;
    } catch (e) {
      const message = `cannot write metrics to ${this.deps.metricsPath}: ${describeError(e)}`;
      if (message !== this.metricsError) this.deps.logger.warn(message);
      this.metricsError = message;
    }
  }

  private writeMetricsFile(path: string, results: readonly CheckResult[], cycleDurationMs: number): void {
    const now = this.now();
    writeMetrics(path, {
      lastPollTimestamp: this.lastPollAt,
      lastPollOk: this.lastPollOk,
      cycleDurationMs,
      cycles: this.counters.cycles,
      chainSeq: readChainHead(this.deps.db, this.deps.config.hostId).seq,
      bundlesCreated: this.counters.bundles,
      ordersAccepted: this.counters.accepted,
      ordersRejected: this.counters.rejected,
      // Depth counts every undelivered item, whether or not a flush holds it right now.
      queue: this.outbox.depth(now).map((s) => ({ ...s, pending: s.undelivered })),
      checks: results.map((r) => ({ check: r.check, status: r.status })),
      delivery: this.destinations.map((destination) => {
        const h = readDeliveryHealth(this.deps.db, destination);
        return { destination, failing: h?.state === 'failing', kind: h?.kind ?? null, lastErrorAt: h?.lastErrorAt ?? null };
      }),
      controlPlane: controlPlaneView(this.deps.db, now, this.deps.config.controlPlaneMaxAge * 1000),
    });
  }

  /** Repeat cycles every pollInterval until the signal aborts; the current write always completes. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.cycle(signal);
      } catch (e) {
        this.deps.logger.error(`cycle failed: ${describeError(e)}`);
      }
      await sleep(this.deps.config.pollInterval * 1000, signal);
    }
  }
}

/** A delivery function that remembers the first retryable error and the reasons of rejections. */
function observed(deliver: Deliver): { deliver: Deliver; outcome: { error: string | null; rejected: string[] } } {
  const outcome = { error: null as string | null, rejected: [] as string[] };
  return {
    outcome,
    deliver: async (items, budget) => {
      let results: DeliveryResult[];
      try {
        results = await deliver(items, budget);
      } catch (e) {
        outcome.error ??= describeError(e);
        throw e;
      }
      for (const r of results) {
        if (r.kind === 'retry') outcome.error ??= r.error;
        else if (r.kind === 'reject') outcome.rejected.push(r.reason);
      }
      return results;
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
