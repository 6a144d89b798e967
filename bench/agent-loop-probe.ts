/**
 * Preloaded into the shipped agent (`NODE_OPTIONS=--import=probe.mjs`, through the launcher) by
 * bench/agent-loop-real.ts: it measures the unmodified `compliance-agent run` from inside. Each
 * cycle ends with the agent's sleep of pollInterval (BENCH_POLL_MS, an exact setTimeout delay
 * nothing else uses); the probe turns that sleep into 0 ms, so cycles run back to back, and at each
 * end records the cycle's CPU (process.cpuUsage) and wall time and the bundles it created (the
 * agent's own metrics file). After a 20-cycle warm-up and every 100 cycles: RSS and anonymous RSS
 * (/proc/self/smaps_rollup) as the agent has them, then the V8 heap after a full GC. Every 50 cycles
 * it puts the appliance's clock off (stand-ins' drift file, cycle 25) and back (cycle 30). After
 * BENCH_CYCLES it writes BENCH_REPORT and sends itself SIGTERM: the agent stops as under systemd.
 * It counts the garbage collections of the measured cycles by kind (count, pause time). With
 * BENCH_CPU_PROF set, a V8 CPU profile of the measured cycles goes to that file.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const need = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`agent-loop-probe: ${name} is not set`);
  return v;
};
const CYCLES = Number(need('BENCH_CYCLES'));
const POLL_MS = Number(need('BENCH_POLL_MS'));
const REPORT = need('BENCH_REPORT');
const DRIFT = need('BENCH_DRIFT_FILE');
const METRICS = need('BENCH_METRICS');
const WARMUP = 20;
const CPU_PROF = process.env.BENCH_CPU_PROF;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MB = 2 ** 20;
function smapsKb(field: string, text: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`agent-loop-probe: no ${field} in /proc/self/smaps_rollup`);
  return Number(m[1]);
}

export interface Checkpoint {
  cycle: number;
  rssMb: number;
  anonMb: number;
  fileMb: number;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
}
const checkpoints: Checkpoint[] = [];
function checkpoint(cycle: number): void {
  const smaps = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const rssMb = smapsKb('Rss', smaps) / 1024;
  const anonMb = smapsKb('Anonymous', smaps) / 1024;
  const forcedFrom = performance.now();
  gc();
  forcedGc.push([forcedFrom, performance.now()]);
  const m = process.memoryUsage();
  checkpoints.push({
    cycle,
    rssMb,
    anonMb,
    fileMb: rssMb - anonMb,
    heapUsedMb: m.heapUsed / MB,
    heapTotalMb: m.heapTotal / MB,
    externalMb: m.external / MB,
    arrayBuffersMb: m.arrayBuffers / MB,
  });
}

/** RSS by mapping at the end: the node binary, shared libraries, the malloc heap, other anonymous memory. */
function rssByMapping(): { mapping: string; rssMb: number; anonMb: number }[] {
  const totals = new Map<string, { rss: number; anon: number }>();
  let current = '';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      const path = head[2]!.trim();
      // The binary's code (r-xp) apart from its read-only data (r--p: ICU data, V8's snapshot).
      current = path === '' ? 'anonymous mappings (V8 heap, malloc arenas, stacks)' : path.startsWith('/') ? `${path.split('/').pop()!} ${head[1]!}` : path;
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB$/.exec(line);
    if (!field) continue;
    const t = totals.get(current) ?? { rss: 0, anon: 0 };
    if (field[1] === 'Rss') t.rss += Number(field[2]);
    else t.anon += Number(field[2]);
    totals.set(current, t);
  }
  return [...totals]
    .map(([mapping, t]) => ({ mapping, rssMb: t.rss / 1024, anonMb: t.anon / 1024 }))
    .sort((a, b) => b.rssMb - a.rssMb)
    .slice(0, 10);
}

function bundlesCreated(): number {
  const m = /^compliance_agent_bundles_created_total (\d+)$/m.exec(readFileSync(METRICS, 'utf8'));
  if (!m) throw new Error(`agent-loop-probe: ${METRICS} has no compliance_agent_bundles_created_total`);
  return Number(m[1]);
}

/** When the checkpoints forced a full GC: those are the probe's, not the agent's. */
const forcedGc: [number, number][] = [];
/** Garbage collections over the measured cycles, by kind: count and pause time. */
const gcByKind: Record<string, { count: number; ms: number }> = {};
const GC_KINDS: Record<number, string> = {
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (forcedGc.some(([from, to]) => e.startTime >= from && e.startTime <= to)) continue;
    const kind = GC_KINDS[(e as PerformanceEntry & { detail: { kind: number } }).detail.kind] ?? 'other';
    const k = (gcByKind[kind] ??= { count: 0, ms: 0 });
    k.count++;
    k.ms += e.duration;
  }
});

const profiler = new Session();
if (CPU_PROF) profiler.connect();

const cpuUs = new Float64Array(CYCLES);
const wallMs = new Float64Array(CYCLES);
const bundles = new Int32Array(CYCLES);
let ended = 0;
let lastBundles = 0;
let cpuMark = process.cpuUsage();
let wallMark = performance.now();

function cycleEnded(): void {
  const cpu = process.cpuUsage(cpuMark);
  const wall = performance.now() - wallMark;
  ended++;
  const created = bundlesCreated();
  const i = ended - WARMUP;
  if (i >= 1 && i <= CYCLES) {
    cpuUs[i - 1] = cpu.user + cpu.system;
    wallMs[i - 1] = wall;
    bundles[i - 1] = created - lastBundles;
  }
  lastBundles = created;
  if (i === 0 || (i > 0 && i % 100 === 0)) checkpoint(i);
  if (i === 0) gcObserver.observe({ entryTypes: ['gc'] });
  if (i === 0 && CPU_PROF) profiler.post('Profiler.enable', () => profiler.post('Profiler.start'));
  if (i % 50 === 25) writeFileSync(DRIFT, '');
  if (i % 50 === 30) rmSync(DRIFT, { force: true });
  if (i === CYCLES) {
    const samples = Array.from({ length: CYCLES }, (_, k) => ({ cpuUs: cpuUs[k]!, wallMs: wallMs[k]!, bundles: bundles[k]! }));
    writeFileSync(
      REPORT,
      JSON.stringify({
        node: process.version,
        execArgv: process.execArgv,
        checkpoints,
        samples,
        gc: gcByKind,
        byMapping: rssByMapping(),
        peakRssMb: process.resourceUsage().maxRSS / 1024,
      }),
    );
    if (CPU_PROF) {
      // A session on this thread answers synchronously.
      profiler.post('Profiler.stop', (err, r) => {
        if (err) throw err;
        writeFileSync(CPU_PROF, JSON.stringify(r.profile));
      });
    }
    process.kill(process.pid, 'SIGTERM');
  }
  cpuMark = process.cpuUsage();
  wallMark = performance.now();
}

const original = globalThis.setTimeout;
globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  if (ms === POLL_MS) {
    cycleEnded();
    return original(fn, 0, ...args);
  }
  return original(fn, ms, ...args);
}) as typeof setTimeout;
