/**
 * The measured agent for bench/agent-loop.ts: the production runtime (openAgentRuntime: state
 * database, evidence chain, outbox, mTLS client, order handling, metrics file) on the simulated
 * appliance, polling the parent's reference MCP. It runs CYCLES cycles, one pollInterval apart on
 * the simulated clock, and prints one JSON line with its own measurements:
 *   rss/heap at checkpoints, wall and CPU time (process.cpuUsage) per cycle split into idle cycles
 *   (nothing changed, no evidence) and cycles that chained and flushed evidence, and the time of
 *   the six checks alone (runChecks) on the simulated host.
 * Usage: node agent-loop-child.mjs CONFIG_PATH APPLIANCE_ROOT CYCLES
 */
import { loadBaseline, loadConfig } from '../src/config/index.js';
import { simulatedAppliance } from '../testing/simulated-host/index.js';
import { openAgentRuntime } from '../src/agent/index.js';
import { runChecks } from '../src/checks/index.js';
import { silentLogger } from '../src/common/index.js';

const [configPath, root, cyclesArg] = process.argv.slice(2);
if (!configPath || !root || !cyclesArg) throw new Error('usage: agent-loop-child CONFIG_PATH APPLIANCE_ROOT CYCLES');
const CYCLES = Number(cyclesArg);
const WARMUP = 20;

const config = loadConfig(configPath);
const baseline = loadBaseline(config.baselinePath);
const host = simulatedAppliance({ root, now: Date.UTC(2026, 10, 23, 12, 0, 0) });
const rt = openAgentRuntime(config, { host, logger: silentLogger });

interface Sample {
  readonly wallMs: number;
  readonly cpuUs: number;
  readonly bundles: number;
}

async function cycle(i: number): Promise<Sample> {
  host.advance(config.pollInterval * 1000);
  // The simulated host logs every command it runs (for tests); a real host keeps nothing.
  host.clearExecuted();
  // Some change now and then: the clock drifts past ntpMaxSkewMs and back every 50 cycles.
  if (i % 50 === 25) host.setNtpOffsetMs(config.ntpMaxSkewMs * 2);
  if (i % 50 === 30) host.setNtpOffsetMs(1);
  const cpu = process.cpuUsage();
  const t = performance.now();
  const r = await rt.agent.cycle();
  const used = process.cpuUsage(cpu);
  return { wallMs: performance.now() - t, cpuUs: used.user + used.system, bundles: r.bundles };
}

for (let i = 0; i < WARMUP; i++) await cycle(-1 - i);
const checkpoints: { cycle: number; rssMb: number; heapMb: number; heapTotalMb: number; externalMb: number }[] = [];
// With --expose-gc the heap figure is what survives a full collection: growth there is a leak, not garbage.
const gc = (globalThis as { gc?: () => void }).gc;
const mem = (n: number) => {
  gc?.();
  const m = process.memoryUsage();
  checkpoints.push({ cycle: n, rssMb: m.rss / 2 ** 20, heapMb: m.heapUsed / 2 ** 20, heapTotalMb: m.heapTotal / 2 ** 20, externalMb: m.external / 2 ** 20 });
};
mem(0);
// Typed arrays, so the measurement itself does not grow the heap it measures.
const wallMs = new Float64Array(CYCLES);
const cpuUs = new Float64Array(CYCLES);
const bundles = new Int32Array(CYCLES);
for (let i = 1; i <= CYCLES; i++) {
  const s = await cycle(i);
  wallMs[i - 1] = s.wallMs;
  cpuUs[i - 1] = s.cpuUs;
  bundles[i - 1] = s.bundles;
  if (i % 100 === 0) mem(i);
}
const samples = Array.from({ length: CYCLES }, (_, i) => ({ wallMs: wallMs[i]!, cpuUs: cpuUs[i]!, bundles: bundles[i]! }));
if (rt.agent.pending() !== 0) throw new Error(`${rt.agent.pending()} item(s) left undelivered`);

const checkMs: number[] = [];
for (let i = 0; i < 200; i++) {
  const t = performance.now();
  await runChecks({ host, config, baseline });
  checkMs.push(performance.now() - t);
}
await rt.close();
process.stdout.write(`${JSON.stringify({ checkpoints, samples, checkMs, peakRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
