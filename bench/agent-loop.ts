/**
 * The agent over many cycles: memory, CPU per idle cycle, cycle and check times.
 *
 *   npx tsx bench/agent-loop.ts [CYCLES]      (default 1000)
 *   BENCH_NODE_FLAGS="--max-semi-space-size=1 --expose-gc" npx tsx bench/agent-loop.ts 6000
 *     node flags for the measured child; with --expose-gc the heap figures are after a full GC.
 *
 * A complete site (testing/harness.ts: PKI, reference MCP over mTLS in this process, simulated
 * appliance, config, baseline, keys) and the agent in a child process on plain node (bundled with
 * esbuild, as the built agent runs), which measures itself: RSS after a 20-cycle warm-up and every
 * 100 cycles, process.cpuUsage and wall time per cycle, and the six checks alone on the simulated host.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startHarness } from '../testing/index.js';
import { bundle, machine, median, percentile, runNode } from './lib.js';

export interface AgentLoopFigures {
  readonly cycles: number;
  readonly rssStartMb: number;
  readonly rssEndMb: number;
  /** RSS after the last cycle minus RSS after cycle 100 (past allocator and JIT warm-up). */
  readonly rssGrowthMb: number;
  readonly peakRssMb: number;
  readonly heapEndMb: number;
  readonly idleCycles: number;
  readonly idleCpuMs: number;
  readonly idleWallMs: number;
  readonly evidenceCycles: number;
  readonly evidenceWallMs: number;
  readonly checksMedianMs: number;
  readonly checksP95Ms: number;
  readonly checkpoints: readonly { cycle: number; rssMb: number; heapMb: number; heapTotalMb: number; externalMb: number }[];
}

interface ChildReport {
  checkpoints: { cycle: number; rssMb: number; heapMb: number; heapTotalMb: number; externalMb: number }[];
  samples: { wallMs: number; cpuUs: number; bundles: number }[];
  checkMs: number[];
  peakRssMb: number;
}

export async function measureAgentLoop(cycles = 1000, nodeArgs: string[] = []): Promise<AgentLoopFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'ca-bench-loop-'));
  const child = await bundle('bench/agent-loop-child.ts');
  const h = await startHarness(dir);
  try {
    const out = await runNode(child.path, [h.configPath, h.host.root, String(cycles)], nodeArgs);
    const r = JSON.parse(out.trim().split('\n').pop()!) as ChildReport;
    const idle = r.samples.filter((s) => s.bundles === 0);
    const busy = r.samples.filter((s) => s.bundles > 0);
    const at = (n: number) => r.checkpoints.find((c) => c.cycle === n)!;
    const last = r.checkpoints[r.checkpoints.length - 1]!;
    return {
      cycles,
      rssStartMb: at(0).rssMb,
      rssEndMb: last.rssMb,
      rssGrowthMb: last.rssMb - (at(100) ?? at(0)).rssMb,
      peakRssMb: r.peakRssMb,
      heapEndMb: last.heapMb,
      idleCycles: idle.length,
      idleCpuMs: median(idle.map((s) => s.cpuUs / 1000)),
      idleWallMs: median(idle.map((s) => s.wallMs)),
      evidenceCycles: busy.length,
      evidenceWallMs: median(busy.map((s) => s.wallMs)),
      checksMedianMs: median(r.checkMs),
      checksP95Ms: percentile(r.checkMs, 95),
      checkpoints: r.checkpoints,
    };
  } finally {
    await h.close();
    child.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const cycles = Number(process.argv[2] ?? 1000);
  const m = machine();
  console.log(`agent loop: ${cycles} cycles on the simulated appliance against the reference MCP over mTLS; ${m.cores} x ${m.cpu}, node ${m.node}`);
  const f = await measureAgentLoop(cycles, (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean));
  console.log(
    `RSS after warm-up ${f.rssStartMb.toFixed(1)} MB, after ${cycles} cycles ${f.rssEndMb.toFixed(1)} MB, growth since cycle 100 ${f.rssGrowthMb.toFixed(1)} MB, peak ${f.peakRssMb.toFixed(1)} MB`,
  );
  console.log(
    `by cycle, RSS/heap used/heap total/external MB: ${f.checkpoints.map((c) => `${c.cycle}:${c.rssMb.toFixed(1)}/${c.heapMb.toFixed(1)}/${c.heapTotalMb.toFixed(1)}/${c.externalMb.toFixed(1)}`).join(' ')}`,
  );
  console.log(`idle cycle (${f.idleCycles}): CPU ${f.idleCpuMs.toFixed(2)} ms, wall ${f.idleWallMs.toFixed(2)} ms (medians)`);
  console.log(`cycle with evidence (${f.evidenceCycles}): wall ${f.evidenceWallMs.toFixed(2)} ms (median)`);
  console.log(`six checks on the simulated host: median ${f.checksMedianMs.toFixed(2)} ms, p95 ${f.checksP95Ms.toFixed(2)} ms`);
}
