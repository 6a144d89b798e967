/**
 * The agent as it runs in production, over many cycles: the shipped bundle started by its launcher
 * (bin/compliance-agent with bin/node-flags, installed as the Nix package installs it), running
 * `compliance-agent run` unmodified with RealHost, whose checks spawn real processes (the stand-ins
 * of bench/stand-ins.ts, first on PATH), against the reference MCP over mTLS in this process. The
 * config is the module's: the firewall check reads a ruleset snapshot file, the backup stamp is a
 * real file, /run/current-system and the system profile are links and the metrics file is in
 * /run/compliance-agent-metrics (tmpfs), in the agent's own mount namespace (needs root).
 * bench/agent-loop-probe.ts, preloaded through NODE_OPTIONS, measures from inside.
 *
 *   npm run build && npx tsx bench/agent-loop-real.ts [CYCLES] [NODE] [BETTER_SQLITE3_DIR]
 *     CYCLES default 5000; NODE default this node; BETTER_SQLITE3_DIR: a better-sqlite3 built for
 *     NODE when that is not this repository's node (see bench/RESULTS.md for Node 24).
 *     BENCH_CPU_PROF=FILE: the probe writes a V8 CPU profile of the measured cycles to FILE
 *     (.cpuprofile, as node --cpu-prof would; NODE_OPTIONS refuses that flag).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startHarness, baselineFor } from '../testing/index.js';
import { receivedBundles } from '../test/helpers/evidence.js';
import { bundle, installPackage, machine, median, percentile } from './lib.js';
import type { Checkpoint } from './agent-loop-probe.js';
import { writeStandIns } from './stand-ins.js';

/**
 * The running system as the patching check reads it on an appliance, in the agent's own mount
 * namespace (this machine's /run and /nix stay untouched): /run/current-system and the system
 * profile's generation link point at the simulated appliance's store path, which exists.
 */
const SYSTEM_LINKS = [
  'set -e',
  'store=$1; link=$2; metrics=$3; shift 3',
  'for d in /nix/store /nix/var/nix/profiles /run; do mount -t tmpfs tmpfs "$d"; done',
  'mkdir -p "$store" "$metrics"',
  'ln -s "$store" "/nix/var/nix/profiles/$link"',
  'ln -s "$link" /nix/var/nix/profiles/system',
  'ln -s "$store" /run/current-system',
  'exec "$@"',
].join('\n');

/** Where the module has the agent write its metrics: a runtime directory (tmpfs) node_exporter reads. */
const METRICS_FILE = '/run/compliance-agent-metrics/compliance-agent.prom';

/** An exact delay nothing but the agent's sleep between cycles uses (the probe keys on it). */
const POLL_INTERVAL_S = 61;

export interface RealLoopFigures {
  readonly node: string;
  readonly execArgv: readonly string[];
  readonly cycles: number;
  readonly load: string;
  readonly checkpoints: readonly Checkpoint[];
  readonly at1000: Checkpoint;
  readonly atEnd: Checkpoint;
  /** RSS after the last cycle minus RSS after cycle 1,000 (after the warm-up in a shorter run). */
  readonly growthMb: number;
  readonly peakRssMb: number;
  readonly idleCycles: number;
  readonly idleCpuMs: number;
  readonly idleCpuP95Ms: number;
  readonly idleWallMs: number;
  readonly evidenceCycles: number;
  readonly evidenceCpuMs: number;
  /** Commands a cycle runs when it reuses no result (the healer's and `check`'s cycle). */
  readonly commandsPerFullCycle: number;
  /** Stand-in processes the agent spawned over the run, per cycle (the stand-ins log each run). */
  readonly commandsPerCycle: number;
  /** Garbage collections per measured cycle, by kind: count and main-thread pause in ms. */
  readonly gcPerCycle: Readonly<Record<string, { count: number; ms: number }>>;
  /** RSS by mapping after the last cycle, largest first. */
  readonly byMapping: readonly { mapping: string; rssMb: number; anonMb: number }[];
  /** Evidence the MCP received, by check and outcome: every check ran and answered. */
  readonly outcomes: Readonly<Record<string, number>>;
}

interface ProbeReport {
  node: string;
  execArgv: string[];
  checkpoints: Checkpoint[];
  samples: { cpuUs: number; wallMs: number; bundles: number }[];
  gc: Record<string, { count: number; ms: number }>;
  byMapping: { mapping: string; rssMb: number; anonMb: number }[];
  peakRssMb: number;
}

export async function measureRealLoop(cycles = 5000, node = process.execPath, betterSqlite3?: string): Promise<RealLoopFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'ca-bench-real-'));
  const probe = await bundle('bench/agent-loop-probe.ts');
  const h = await startHarness(join(dir, 'site'));
  try {
    const appliance = join(dir, 'appliance');
    mkdirSync(appliance);
    const simBaseline = baselineFor(h.host);
    const stamp = join(appliance, 'last-success.stamp');
    writeFileSync(stamp, `${new Date().toISOString()}\n`);
    const snapshot = join(appliance, 'ruleset.nft');
    writeFileSync(snapshot, h.host.ruleset);
    const baselinePath = join(appliance, 'baseline.json');
    writeFileSync(baselinePath, JSON.stringify({ ...simBaseline, backup: { ...simBaseline.backup, stampFile: stamp } }));
    const stateDir = join(dir, 'state');
    const configPath = join(dir, 'config.json');
    const site = JSON.parse(readFileSync(h.configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(configPath, JSON.stringify({ ...site, baselinePath, stateDir, rulesetSnapshotFile: snapshot, metricsFile: METRICS_FILE, pollInterval: POLL_INTERVAL_S }));
    const standIns = await writeStandIns(join(dir, 'stand-ins'), h.host, h.config, simBaseline);
    const launcher = installPackage(join(dir, 'package'), node, betterSqlite3);
    const report = join(dir, 'report.json');
    const load = loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
    await new Promise<void>((resolve, reject) => {
      const system = [h.host.runningSystem().storePath, `system-${h.host.currentGeneration().number}-link`, dirname(METRICS_FILE)];
      const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', SYSTEM_LINKS, 'sh', ...system, launcher, 'run', '--config', configPath], {
        env: {
          PATH: `${standIns.binDir}:/usr/bin:/bin`,
          NODE_OPTIONS: `--import=${pathToFileURL(probe.path).href}`,
          ...(process.env.BENCH_CPU_PROF ? { BENCH_CPU_PROF: process.env.BENCH_CPU_PROF } : {}),
          BENCH_CYCLES: String(cycles),
          BENCH_POLL_MS: String(POLL_INTERVAL_S * 1000),
          BENCH_REPORT: report,
          BENCH_DRIFT_FILE: standIns.driftFile,
          BENCH_METRICS: METRICS_FILE,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`the agent exited ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`))));
    });
    const r = JSON.parse(readFileSync(report, 'utf8')) as ProbeReport;
    const outcomes: Record<string, number> = {};
    for (const b of receivedBundles(h.mcp, h.agentPublicKey)) outcomes[`${b.check} ${b.outcome}`] = (outcomes[`${b.check} ${b.outcome}`] ?? 0) + 1;
    const idle = r.samples.filter((s) => s.bundles === 0);
    const busy = r.samples.filter((s) => s.bundles > 0);
    const at = (n: number) => r.checkpoints.find((c) => c.cycle === n) ?? r.checkpoints[0]!;
    const atEnd = r.checkpoints[r.checkpoints.length - 1]!;
    return {
      node: r.node,
      execArgv: r.execArgv,
      cycles,
      load,
      checkpoints: r.checkpoints,
      at1000: at(1000),
      atEnd,
      growthMb: atEnd.rssMb - at(1000).rssMb,
      peakRssMb: r.peakRssMb,
      idleCycles: idle.length,
      idleCpuMs: median(idle.map((s) => s.cpuUs / 1000)),
      idleCpuP95Ms: percentile(
        idle.map((s) => s.cpuUs / 1000),
        95,
      ),
      idleWallMs: median(idle.map((s) => s.wallMs)),
      evidenceCycles: busy.length,
      evidenceCpuMs: busy.length ? median(busy.map((s) => s.cpuUs / 1000)) : 0,
      byMapping: r.byMapping,
      gcPerCycle: Object.fromEntries(Object.entries(r.gc).map(([k, v]) => [k, { count: v.count / cycles, ms: v.ms / cycles }])),
      commandsPerFullCycle: standIns.commandLines.filter((l) => !l.startsWith('nft ')).length,
      commandsPerCycle: spawned(standIns.commandLog) / cycles,
      outcomes,
    };
  } finally {
    await h.close();
    probe.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

function spawned(log: string): number {
  try {
    return readFileSync(log, 'utf8')
      .split('\n')
      .filter((l) => l !== '').length;
  } catch {
    return 0;
  }
}

export function describeRealLoop(f: RealLoopFigures): string[] {
  const c = (x: Checkpoint) =>
    `${x.rssMb.toFixed(1)} MB (anonymous ${x.anonMb.toFixed(1)}, file-backed ${x.fileMb.toFixed(1)}; heap after GC ${x.heapUsedMb.toFixed(1)} of ${x.heapTotalMb.toFixed(1)})`;
  return [
    `node ${f.node} ${f.execArgv.join(' ')}; load average at start ${f.load}`,
    `RSS after cycle ${f.at1000.cycle.toLocaleString('en')}: ${c(f.at1000)}`,
    `RSS after cycle ${f.cycles.toLocaleString('en')}: ${c(f.atEnd)}`,
    `growth ${f.at1000.cycle.toLocaleString('en')} -> ${f.cycles.toLocaleString('en')}: ${f.growthMb.toFixed(1)} MB; peak RSS ${f.peakRssMb.toFixed(1)} MB`,
    `commands: ${f.commandsPerCycle.toFixed(2)} spawned per cycle over the run (${f.commandsPerFullCycle} in a cycle that reuses nothing)`,
    `idle cycle (${f.idleCycles}): CPU ${f.idleCpuMs.toFixed(2)} ms median, ${f.idleCpuP95Ms.toFixed(2)} ms p95, wall ${f.idleWallMs.toFixed(2)} ms; cycle with evidence (${f.evidenceCycles}): CPU ${f.evidenceCpuMs.toFixed(2)} ms`,
    `garbage collection per cycle: ${Object.entries(f.gcPerCycle)
      .map(([k, v]) => `${k} ${v.count.toFixed(2)} (${v.ms.toFixed(2)} ms)`)
      .join(', ')}`,
    `by cycle, RSS/anonymous/heap after GC MB: ${f.checkpoints.map((x) => `${x.cycle}:${x.rssMb.toFixed(1)}/${x.anonMb.toFixed(1)}/${x.heapUsedMb.toFixed(1)}`).join(' ')}`,
    `RSS by mapping after the last cycle, MB (anonymous part): ${f.byMapping.map((x) => `${x.mapping} ${x.rssMb.toFixed(1)} (${x.anonMb.toFixed(1)})`).join('; ')}`,
    `evidence at the MCP: ${Object.entries(f.outcomes)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [cyclesArg, node, betterSqlite3] = process.argv.slice(2);
  const m = machine();
  console.log(`agent loop, production-like: ${m.cores} x ${m.cpu}`);
  const f = await measureRealLoop(Number(cyclesArg ?? 5000), node ?? process.execPath, betterSqlite3);
  for (const line of describeRealLoop(f)) console.log(line);
}
