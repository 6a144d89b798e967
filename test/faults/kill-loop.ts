import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { expect } from 'vitest';
import type { Harness } from '../../testing/index.js';
import { EVIDENCE_PAYLOAD_TYPE, publicKeyOf, randomSeed, verifyEnvelope, type Envelope } from '../../src/crypto/index.js';
import { EvidenceBundleSchema, evidenceFileName, readChainHead, verifyPath, type EvidenceBundle } from '../../src/evidence/index.js';
import { prepareOrder, signOrder } from '../../src/orders/index.js';
import { openStateDb, stateLayout } from '../../src/state/index.js';

const CHILD = fileURLToPath(new URL('./fixtures/agent-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

export const PHASES = ['enqueue', 'flush', 'heal', 'prune'] as const;
export type Phase = (typeof PHASES)[number];

/** Config for the site the kill loop runs: heals allowed all day, aggressive pruning, long-lived orders. */
export const KILL_SITE_CONFIG = {
  maintenanceWindow: '00:00-00:00',
  orderTtl: 86_400,
  heartbeatInterval: 600,
  evidenceRetention: 5,
  pruneRetentionDays: 0,
} as const;

export interface KillRun {
  readonly target: Phase;
  /** The last phase the child announced before it died. */
  readonly killedIn: string;
}

export interface KillLoopResult {
  readonly runs: readonly KillRun[];
  readonly healOrders: ReadonlySet<string>;
  /** State-changing commands the appliance ran, across every child. */
  readonly execs: readonly string[];
  readonly lastClock: number;
}

/** The child bundled once (esbuild), so each restart costs a plain `node` start, not a TypeScript transform. */
export async function bundleChild(): Promise<{ path: string; cleanup: () => void }> {
  const dir = join(REPO, 'node_modules', '.cache', 'ca-faults');
  mkdirSync(dir, { recursive: true });
  // Inside the repo so the bundle's bare imports resolve to this node_modules.
  const path = join(dir, `agent-child-${process.pid}-${Date.now()}.mjs`);
  await build({ entryPoints: [CHILD], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: path, logLevel: 'warning' });
  return { path, cleanup: () => rmSync(path, { force: true }) };
}

/** One agent child: started at once (modules load), told to go later, then killed. */
class Child {
  private readonly proc: ChildProcess;
  private stderr = '';
  private buffered = '';
  private onLine: (word: string, rest: string) => void = () => undefined;
  readonly loaded: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;

  constructor(bundle: string, h: Harness) {
    this.proc = spawn(process.execPath, [bundle, h.configPath, h.host.root], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let loaded!: () => void;
    this.loaded = new Promise((resolve) => (loaded = resolve));
    this.proc.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.proc.stdout!.on('data', (c: Buffer) => {
      this.buffered += c.toString();
      const lines = this.buffered.split('\n');
      this.buffered = lines.pop()!;
      for (const line of lines) {
        const space = line.indexOf(' ');
        if (line === 'loaded') loaded();
        else this.onLine(space < 0 ? line : line.slice(0, space), space < 0 ? '' : line.slice(space + 1));
      }
    });
    this.exited = new Promise((resolve) => this.proc.on('close', (code, signal) => resolve({ code, signal, stderr: this.stderr })));
  }

  go(startMs: number, onLine: (word: string, rest: string) => void): void {
    this.onLine = onLine;
    this.proc.stdin!.end(`go ${startMs}\n`);
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

/**
 * Let a warm child go against the harness's MCP and appliance root, wait for it to announce
 * `target`, let it run 0-3 ms more, and SIGKILL it. A child that never reaches the phase is killed
 * after `phaseWaitMs` anyway; the last phase it announced is what counts.
 */
async function runOnce(h: Harness, child: Child, target: Phase, startMs: number, phaseWaitMs: number, sink: { execs: string[]; clock: number }): Promise<KillRun> {
  const dir = stateLayout(h.config.stateDir).evidence;
  const key = h.agentPublicKey;
  await child.loaded;
  let last = 'start';
  let killScheduled = false;
  let fallback: NodeJS.Timeout | undefined;
  const kill = (): void => {
    if (killScheduled) return;
    killScheduled = true;
    const delay = Math.floor(Math.random() * 4);
    if (delay === 0) setImmediate(() => child.kill());
    else setTimeout(() => child.kill(), delay);
  };
  child.go(startMs, (word, rest) => {
    if (killScheduled) return;
    if (word === 'ready') fallback = setTimeout(kill, phaseWaitMs);
    else if (word === 'clock') sink.clock = Math.max(sink.clock, Number(rest));
    else if (word === 'exec') sink.execs.push(rest);
    else if (word === 'phase') {
      last = rest;
      if (rest === target) kill();
    }
  });
  const { code, signal, stderr } = await child.exited;
  clearTimeout(fallback);
  // It must have died by our hand, not by its own error.
  expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });
  // Whatever the kill interrupted (export, prune), the auditor's copy on disk is a gap-free chain.
  if (existsSync(dir)) expect(verifyPath(dir, [key]).findings).toEqual([]);
  return { target, killedIn: last };
}

/** Orders for the next run: a heal the agent acts on, a run_checks, and now and then a forgery. */
function queueOrders(h: Harness, target: Phase, healOrders: Set<string>): void {
  if (target === 'heal' || Math.random() < 0.3) {
    const heal = h.signOrder('heal', { checks: ['services'] });
    healOrders.add(orderIdOf(heal));
    h.mcp.enqueueOrder(heal);
  }
  if (Math.random() < 0.3) h.mcp.enqueueOrder(h.signOrder('run_checks', {}));
  if (Math.random() < 0.15) {
    const seed = randomSeed();
    const forged = prepareOrder(
      { site_id: h.config.siteId, host_id: h.config.hostId, sequence: 1_000_000, policy_version: '1.0', type: 'rollback', params: {} },
      { now: h.host.now(), ttlS: 600 },
    );
    h.mcp.enqueueOrder(signOrder(forged, { keyId: 'msp-orders-2026', seed, publicKey: publicKeyOf(seed) }));
  }
}

function orderIdOf(env: Envelope): string {
  return (JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { order_id: string }).order_id;
}

export async function killLoop(h: Harness, bundle: string, opts: { targets: readonly Phase[]; runs: number; phaseWaitMs?: number }): Promise<KillLoopResult> {
  const runs: KillRun[] = [];
  let next = new Child(bundle, h);
  const healOrders = new Set<string>();
  const sink = { execs: [] as string[], clock: h.host.now() };
  // A fixed count, no wall-clock budget: a loaded machine makes the loop slower, never shorter.
  for (let i = 0; i < opts.runs; i++) {
    const target = opts.targets[i % opts.targets.length]!;
    // Each restart continues on a clock later than anything the previous child saw.
    const startMs = sink.clock + 60_000;
    h.host.setNow(startMs);
    queueOrders(h, target, healOrders);
    // A slow MCP keeps POSTs in flight, so kills land between "stored at the MCP" and "acked".
    h.mcp.setFault(target === 'flush' ? { delayMs: Math.floor(Math.random() * 40) } : null);
    const child = next;
    next = new Child(bundle, h);
    runs.push(await runOnce(h, child, target, startMs, opts.phaseWaitMs ?? 4000, sink));
  }
  // The spare never opened anything.
  next.kill();
  await next.exited;
  h.mcp.setFault(null);
  return { runs, healOrders, execs: sink.execs, lastClock: sink.clock };
}

/**
 * Restart once more in-process, drain everything, then check end to end that no evidence is
 * lost: the MCP holds every bundle of the agent's chain exactly once, seq 1..N linked by
 * prev_hash, identical to what the agent stored; the database is intact; no order was acted on twice.
 */
export async function drainAndVerify(h: Harness, loop: KillLoopResult): Promise<{ n: number; wireDuplicates: number }> {
  h.host.setNow(loop.lastClock + 3_600_000);
  h.host.clearExecuted();
  const rt = h.openAgent();
  for (let i = 0; ; i++) {
    await rt.agent.cycle();
    if (rt.agent.pending() === 0) break;
    expect(i, 'the backlog drains within a few cycles past any backoff').toBeLessThan(20);
    h.host.advance(16 * 60_000);
  }
  await rt.close();

  const db = openStateDb(stateLayout(h.config.stateDir).db);
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const head = readChainHead(db, h.config.hostId);
    const received: { bundle: EvidenceBundle; envelope: Envelope }[] = [...h.mcp.evidence().values()].map((e) => {
      const v = verifyEnvelope(e.envelope, EVIDENCE_PAYLOAD_TYPE, [h.agentPublicKey]);
      if (!v.ok) throw new Error(`MCP holds an unverifiable envelope: ${v.message}`);
      return { bundle: EvidenceBundleSchema.parse(JSON.parse(v.payload.toString('utf8'))), envelope: e.envelope };
    });
    received.sort((a, b) => a.bundle.seq - b.bundle.seq);
    // Zero lost, zero duplicated: exactly seq 1..N of the agent's chain head, once each.
    expect(head.seq).toBeGreaterThan(0);
    expect(received.map((r) => r.bundle.seq)).toEqual(Array.from({ length: head.seq }, (_, i) => i + 1));
    expect(h.mcp.stats().rejected).toBe(0);

    // The MCP's copy is a complete, verifiable chain ending at the agent's head.
    const mcpDir = join(h.dir, 'mcp-copy');
    mkdirSync(mcpDir, { recursive: true });
    for (const r of received) writeFileSync(join(mcpDir, evidenceFileName(r.bundle.seq, r.bundle.bundle_id)), JSON.stringify(r.envelope));
    const mcpReport = verifyPath(mcpDir, [h.agentPublicKey]);
    expect(mcpReport.findings).toEqual([]);
    expect(mcpReport.hosts).toEqual([{ hostId: h.config.hostId, first: 1, last: head.seq, count: head.seq, headHash: head.headHash }]);

    // What the agent still stores (pruning kept the newest) is byte-for-byte what the MCP holds.
    const stored = db.prepare('SELECT bundle_id, envelope FROM evidence ORDER BY seq').all() as { bundle_id: string; envelope: string }[];
    const byId = new Map(received.map((r) => [r.bundle.bundle_id, JSON.stringify(r.envelope)]));
    for (const s of stored) expect(byId.get(s.bundle_id)).toBe(s.envelope);
    // The auditor's on-disk copy verifies too (its first file may follow a pruned bundle).
    const local = verifyPath(stateLayout(h.config.stateDir).evidence, [h.agentPublicKey]);
    expect(local.findings).toEqual([]);
    expect(local.hosts[0]!.last).toBe(head.seq);

    // Every outbox row delivered, none dead-lettered.
    const states = db.prepare("SELECT state, COUNT(*) AS n FROM outbox WHERE destination = 'mcp' GROUP BY state").all() as { state: string; n: number }[];
    expect(states.filter((s) => s.state !== 'done')).toEqual([]);

    // No heal order acted on twice: never more restarts than heal orders the agent accepted.
    const accepted = (db.prepare("SELECT order_id FROM orders_seen WHERE decision = 'accepted'").pluck().all() as string[]).filter((id) => loop.healOrders.has(id));
    const restarts = [...loop.execs, ...h.host.actions()].filter((e) => e.startsWith('systemctl restart'));
    expect(restarts.length).toBeLessThanOrEqual(accepted.length);
    return { n: head.seq, wireDuplicates: h.mcp.stats().duplicates };
  } finally {
    db.close();
  }
}
