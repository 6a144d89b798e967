import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseConfig, type Baseline, type Config } from '../../src/config/index.js';
import { runChecks, systemFacts, type SystemFacts } from '../../src/checks/index.js';
import { simulatedAppliance, baselineFor, type SimulatedHost } from '../../testing/index.js';
import { openStateDb, stateLayout, type StateDb } from '../../src/state/index.js';
import { makeDraft, OrderDispatch } from '../../src/agent/index.js';
import { EvidenceBundleSchema, type EvidenceDraft } from '../../src/evidence/index.js';
import { applyHealRequests, Healing, initHealTree, Spool, type HealerDeps, type HealingContext } from '../../src/heal/index.js';
import type { Envelope } from '../../src/crypto/index.js';
import { silentLogger, type Logger } from '../../src/common/index.js';
import type { RateLimit } from '../../src/orders/index.js';
import { iso, makeKey, signPayload } from '../orders/fixtures.js';

/** 2026-11-23T02:30:00Z: inside the default maintenance window 02:00-04:00 UTC. */
export const IN_WINDOW = Date.UTC(2026, 10, 23, 2, 30, 0);
/** 2026-11-23T12:00:00Z: outside it. */
export const OUT_OF_WINDOW = Date.UTC(2026, 10, 23, 12, 0, 0);

export const msp = makeKey('msp-2026');

/** The agent's view in one cycle: its check results, the facts its bundles carry, its time. */
export interface CycleView extends HealingContext {
  readonly facts: SystemFacts;
}

/** What the agent makes of an order: its evidence as bundles (drafts), and the request it dropped. */
export interface HandledOrderDrafts {
  readonly accepted: boolean;
  readonly drafts: EvidenceDraft[];
  readonly requestId: string | null;
}

export interface CollectedDrafts {
  readonly drafts: EvidenceDraft[];
  record(): void;
  ack(): void;
}

export interface Setup {
  readonly sim: SimulatedHost;
  readonly config: Config;
  readonly baseline: Baseline;
  readonly db: StateDb;
  readonly stateDir: string;
  readonly healing: Healing;
  /** The agent's order dispatch, over `healing`. */
  readonly orders: OrderDispatch;
  readonly healer: HealerDeps;
  /** The agent's view this cycle: fresh check results on the simulated host. */
  cycle(): Promise<CycleView>;
  /** The agent takes an order as its cycle does: dispatched, its evidence specs made bundles. */
  handleOrder(envelope: unknown, view: CycleView): Promise<HandledOrderDrafts>;
  /** The agent reads the healer's answers as its cycle does, without recording them read. */
  collectResults(view: CycleView): Promise<CollectedDrafts>;
  /** A signed order for this appliance, issued now on the simulated clock. */
  order(type: string, params: Record<string, unknown>, overrides?: Record<string, unknown>): Envelope;
  /** Run the healer over the drop box and its held orders (what the path unit and timer start). */
  heal(extra?: Partial<HealerDeps>): ReturnType<typeof applyHealRequests>;
  /** The agent reads the healer's results: marked read and the drop box tidied, as one cycle does. */
  collect(): Promise<CollectedDrafts>;
  readonly healDir: string;
  cleanup(): void;
}

let sequence = 1;

export function setup(opts: { now?: number; config?: Record<string, unknown>; logger?: Logger; rejectionLimit?: RateLimit } = {}): Setup {
  const stateDir = mkdtempSync(join(tmpdir(), 'ca-heal-'));
  const sim = simulatedAppliance({ now: opts.now ?? IN_WINDOW, root: join(stateDir, 'appliance') });
  const baseline = baselineFor(sim);
  const config = parseConfig({
    siteId: 'clinic-001',
    hostId: sim.hostname(),
    deploymentMode: 'direct',
    baselinePath: '/etc/compliance-agent/baseline.json',
    clientCertFile: '/run/credentials/client.crt',
    clientKeyFile: '/run/credentials/client.key',
    signingKeyFile: '/run/credentials/evidence.key',
    caFile: '/etc/compliance-agent/ca.pem',
    trustedOrderKeys: [msp.text],
    stateDir,
    healDir: join(stateDir, '..', `${stateDir.split('/').pop()}-heal`),
    rebuildHealthCheckTimeout: 60,
    ...opts.config,
  });
  const agent = { uid: process.getuid!(), gid: process.getgid!() };
  initHealTree(config.healDir, agent, sim.now());
  const db = openStateDb(stateLayout(stateDir).db);
  const logger = opts.logger ?? silentLogger;
  const healing = new Healing({ baseline, db, spool: new Spool(config.healDir), logger });
  const orders = new OrderDispatch({ config, baseline, db, healing, logger, ...(opts.rejectionLimit ? { rejectionLimit: opts.rejectionLimit } : {}) });
  const collectResults = (view: CycleView): Promise<CollectedDrafts> => {
    const collected = healing.collect(view);
    return Promise.resolve({ ...collected, drafts: collected.specs.map((spec) => makeDraft(config, view.facts, spec)) });
  };
  const healer: HealerDeps = {
    host: sim,
    config,
    baseline,
    agent,
    sleep: (ms) => {
      sim.advance(ms);
      return Promise.resolve();
    },
  };
  return {
    sim,
    config,
    baseline,
    db,
    stateDir,
    healing,
    orders,
    healer,
    async cycle() {
      const results = await runChecks({ host: sim, config, baseline });
      return { results, facts: systemFacts(results), now: sim.now() };
    },
    handleOrder(envelope, view) {
      const handled = orders.handle(envelope, view);
      return Promise.resolve({ accepted: handled.accepted, requestId: handled.requestId, drafts: handled.specs.map((spec) => makeDraft(config, view.facts, spec)) });
    },
    collectResults,
    order(type, params, overrides = {}) {
      const now = sim.now();
      return signPayload(
        {
          order_id: randomUUID(),
          site_id: 'clinic-001',
          host_id: sim.hostname(),
          sequence: sequence++,
          issued_at: iso(now),
          expires_at: iso(now + 900_000),
          policy_version: '1.0',
          type,
          params,
          ...overrides,
        },
        msp.secret,
      );
    },
    heal: (extra = {}) => applyHealRequests({ ...healer, ...extra }),
    healDir: config.healDir,
    async collect() {
      const results = await runChecks({ host: sim, config, baseline });
      const collected = await collectResults({ results, facts: systemFacts(results), now: sim.now() });
      db.transaction(() => collected.record())();
      collected.ack();
      return collected;
    },
    cleanup() {
      db.close();
      rmSync(stateDir, { recursive: true, force: true });
      rmSync(config.healDir, { recursive: true, force: true });
    },
  };
}

/** Every draft must chain into a valid bundle. */
export function assertValidDrafts(drafts: readonly EvidenceDraft[]): void {
  for (const d of drafts) {
    const parsed = EvidenceBundleSchema.safeParse({ ...d, version: '1.0', agent_version: '0.1.0', seq: 1, prev_hash: null });
    if (!parsed.success) throw new Error(`invalid draft for ${d.check}: ${parsed.error.message}`);
  }
}

/** What the healer runs to activate a built or substituted system: the profile first, then activation. */
export function activateSteps(storePath: string): string[] {
  return [`nix-env -p /nix/var/nix/profiles/system --set ${storePath}`, `${storePath}/bin/switch-to-configuration switch`];
}

/** What the healer runs to switch back to exactly generation `n`. */
export function rollbackSteps(n: number): string[] {
  return [`nix-env -p /nix/var/nix/profiles/system --switch-generation ${n}`, `/nix/var/nix/profiles/system-${n}-link/bin/switch-to-configuration switch`];
}
