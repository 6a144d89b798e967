/**
 * Every benchmark with a budget, one table, and bench/RESULTS.md with the machine and the date.
 *
 *   npm run bench          (tsx bench/run-all.ts; about two minutes)
 *
 * Runs `npm run build` first (cold start is measured on the built agent). Each figure says how it
 * was measured; the budgets are ISSUE 5's. Benchmarks print, they do not fail: a missed budget is a
 * row marked MISSED. bench/enqueue.ts and bench/flush.ts are run as they are and their output parsed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measureAgentLoop, type AgentLoopFigures } from './agent-loop.js';
import { measureBacklog } from './backlog.js';
import { measureColdStart } from './cold-start.js';
import { measureEd25519 } from './ed25519.js';
import { REPO, machine } from './lib.js';

interface Row {
  readonly figure: string;
  readonly value: string;
  readonly budget: string;
  readonly verdict: 'holds' | 'MISSED' | '';
  readonly how: string;
}

/** The flags the NixOS unit should start the agent with (see the RSS rows). */
const RECOMMENDED_NODE_FLAGS = ['--max-semi-space-size=1'];

/** What was changed to meet a budget, with the figures measured before and after (same machine, interleaved). */
const CHANGES = [
  '- **Durable enqueue** (commit 9536bc1): evidence is signed with node:crypto instead of @noble/ed25519 (byte-identical: RFC 8032 signatures are deterministic; test/fuzz/ed25519.test.ts). Evidence chain path (sign, chain, store, enqueue), 50 bundles per commit: 1,689 -> 5,688 bundles/s; 1 per commit: 531 -> 962 bundles/s (bench/enqueue.ts, same machine and load).',
  '- **Cold start** (commits 9901be1, 8aca3b6): commands are loaded on demand; execa is imported on the first exec (after the first poll); undici\'s Agent is loaded without the package index (fetch, WebSocket, cache, mocks); the public key is derived with node:crypto, so @noble/ed25519 does not build its tables before the first poll. Spawn to first poll of the built agent: median 439-449 ms -> 258-334 ms (first three changes, interleaved runs) -> 243-248 ms (all four, load ~2); `--version` 370 ms -> 80 ms.',
  '- **RSS**: the undici change also saves ~8 MB (after 1,000 cycles with default flags: 121 MB -> 105 MB). Most of the rest is V8\'s default young generation (two 16 MB semi-spaces; heap used is ~14-18 MB while heap total is ~50 MB): starting node with `--max-semi-space-size=1` (NODE_OPTIONS in the unit, or a node flag in the package\'s wrapper) takes it to ~85 MB for ~0.3 ms more CPU per idle cycle. That flag cannot be set from inside the process (v8.setFlagsFromString after start has no effect on it, measured).',
  '- **Flat**: the JS heap after a full GC is flat (13.8 MB from cycle ~3,000 to 6,000 with `--expose-gc`); RSS still creeps ~1 MB per 1,000 cycles after cycle 2,000 (native memory, decelerating). A heap-snapshot diff found no growing JS structure in the agent (the only per-cycle growth was the simulated host\'s command log, which the benchmark now clears each cycle as a real host keeps none).',
  '- **Not reached: RSS <= 60 MB.** Node 20 itself is 39 MB RSS here before any module (`node -e 0`; ~40 MB of the agent\'s RSS is the node binary\'s own file-backed pages), and the libraries the design names add ~30 MB when imported (zod ~14, undici Agent ~10, pino ~8, execa, better-sqlite3). 60 MB would need node built-ins in place of undici and execa: a design decision left to the lead.',
];

function parseEnqueue(out: string): { chain1: number; chain50: number; outbox1: number; outbox50: number } {
  // Columns: operation, bundles/tx, commits/s, bundles/s (median), range.
  const table = out.split('\n').map((l) => l.trim().split(/\s{2,}/));
  const rate = (operation: string, perTx: number): number => {
    const row = table.find((c) => c[0] === operation && c[1] === String(perTx));
    if (!row) throw new Error(`bench/enqueue.ts printed no row "${operation}" ${perTx}/tx`);
    return Number(row[3]);
  };
  return {
    chain1: rate('sign+chain+store+enqueue -> mcp', 1),
    chain50: rate('sign+chain+store+enqueue -> mcp', 50),
    outbox1: rate('outbox.enqueue -> mcp', 1),
    outbox50: rate('outbox.enqueue -> mcp', 50),
  };
}

function tsx(script: string, args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, script), ...args], { cwd: REPO, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${script} exited ${r.status}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

function loopRows(f: AgentLoopFigures, flags: string): Row[] {
  const how = `1,000 cycles (a pollInterval apart on the simulated clock; drift every 50, heartbeats hourly) of the production runtime on the simulated appliance against the reference MCP over mTLS, in a child on plain node${flags ? ` ${flags}` : ''}; RSS from process.memoryUsage() after a 20-cycle warm-up and every 100 cycles`;
  const label = flags ? ` (${flags})` : ' (default node flags)';
  return [
    { figure: `agent RSS after 1,000 cycles${label}`, value: `${f.rssEndMb.toFixed(1)} MB (after warm-up ${f.rssStartMb.toFixed(1)}, peak ${f.peakRssMb.toFixed(1)})`, budget: '<= 60 MB', verdict: f.rssEndMb <= 60 ? 'holds' : 'MISSED', how },
    { figure: `agent RSS growth, cycles 100 -> 1,000${label}`, value: `${f.rssGrowthMb.toFixed(1)} MB (heap used at 1,000: ${f.heapEndMb.toFixed(1)} MB)`, budget: 'flat', verdict: '', how: 'same run: RSS after cycle 1,000 minus RSS after cycle 100' },
  ];
}

async function main(): Promise<void> {
  const m = machine();
  const date = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const load = loadavg().map((x) => x.toFixed(2)).join(' ');
  console.log(`compliance-agent benchmarks, ${date}: ${m.cores} x ${m.cpu}, node ${m.node}, load average ${load}\n`);
  execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'ignore' });
  const rows: Row[] = [];
  const step = (what: string) => process.stdout.write(`  measuring ${what}...\n`);

  step('agent loop (default flags)');
  const loop = await measureAgentLoop(1000);
  rows.push(...loopRows(loop, ''));
  step(`agent loop (${RECOMMENDED_NODE_FLAGS.join(' ')})`);
  const tuned = await measureAgentLoop(1000, RECOMMENDED_NODE_FLAGS);
  rows.push(...loopRows(tuned, RECOMMENDED_NODE_FLAGS.join(' ')));
  rows.push(
    { figure: 'CPU time per idle cycle', value: `${loop.idleCpuMs.toFixed(2)} ms (wall ${loop.idleWallMs.toFixed(2)} ms)`, budget: '', verdict: '', how: `median of the ${loop.idleCycles} cycles of the 1,000 that created no evidence: poll over mTLS, six checks, state writes, metrics file; process.cpuUsage() user+system around Agent.cycle` },
    { figure: 'full check cycle on the simulated host', value: `${loop.checksMedianMs.toFixed(2)} ms median, ${loop.checksP95Ms.toFixed(2)} ms p95 (six checks); cycle with evidence ${loop.evidenceWallMs.toFixed(2)} ms`, budget: '', verdict: '', how: 'runChecks (patching, services, backup, firewall, encryption, time) 200 times on the simulated appliance; and the median wall time of the cycles that chained, stored and flushed evidence' },
  );

  step('cold start');
  const cold = await measureColdStart(15, false);
  for (const c of cold) {
    const built = c.label.includes('dist');
    rows.push({
      figure: `cold start to first poll, ${c.label}`,
      value: `${c.medianMs.toFixed(0)} ms median, ${c.minMs.toFixed(0)} ms min`,
      budget: built ? '<= 300 ms' : '',
      verdict: built ? (c.medianMs <= 300 ? 'holds' : 'MISSED') : '',
      how: 'spawn of `compliance-agent run --config C` to an mTLS server in the runner receiving GET /orders/next; 15 runs on an existing state dir (first run, creating it: ' + `${c.firstRunMs.toFixed(0)} ms)`,
    });
  }

  step('durable enqueue (bench/enqueue.ts)');
  const enq = parseEnqueue(tsx('bench/enqueue.ts', []));
  rows.push(
    { figure: 'durable enqueue, evidence chain, 50 per commit', value: `${enq.chain50.toFixed(0)} bundles/s`, budget: '>= 2,000 bundles/s', verdict: enq.chain50 >= 2000 ? 'holds' : 'MISSED', how: 'bench/enqueue.ts: sign + chain + store + enqueue (EvidenceChain.append) in one transaction per 50 bundles, WAL, synchronous=FULL (fsync per commit), median of 3 interleaved ~1 s rounds' },
    { figure: 'durable enqueue, evidence chain, 1 per commit', value: `${enq.chain1.toFixed(0)} bundles/s`, budget: '', verdict: '', how: 'same, one transaction per bundle' },
    { figure: 'durable enqueue, outbox only, 1 / 50 per commit', value: `${enq.outbox1.toFixed(0)} / ${enq.outbox50.toFixed(0)} bundles/s`, budget: '', verdict: '', how: 'bench/enqueue.ts: Outbox.enqueue of a real 1.2 KB envelope' },
  );

  step('10,000-bundle backlog flush');
  const backlog = await measureBacklog(10_000);
  rows.push({
    figure: 'flush of a 10,000-bundle backlog over loopback mTLS',
    value: `${backlog.flushSeconds.toFixed(2)} s, ${backlog.bundlesPerSecond.toFixed(0)} bundles/s (agent CPU ${backlog.cpuSeconds.toFixed(2)} s)`,
    budget: '<= 10 s',
    verdict: backlog.flushSeconds <= 10 ? 'holds' : 'MISSED',
    how: 'bench/backlog.ts: 10,000 chained bundles in the state database, Agent.flush (outbox lease/ack, undici mTLS client, batches of 200) to the reference MCP in its own process verifying every envelope; the MCP then counts 10,000 unique, 0 duplicates',
  });

  step('client-only delivery (bench/flush.ts)');
  const flushOut = tsx('bench/flush.ts', ['--batches', '200']);
  const flushLine = flushOut.split('\n').find((l) => /^\s*200\s/.test(l));
  if (flushLine) {
    const [, seconds, perSecond] = flushLine.trim().split(/\s+/);
    rows.push({ figure: 'MCP client alone, 10,000 envelopes, batches of 200', value: `${seconds} s, ${perSecond} bundles/s`, budget: '', verdict: '', how: 'bench/flush.ts: McpClient.postEvidenceBatch without the outbox, reference MCP in its own process' });
  }

  step('Ed25519');
  const ed = measureEd25519(1);
  const r = (w: string) => ed.rows.find((x) => x.what === w)!.perSecond.toFixed(0);
  rows.push(
    { figure: 'Ed25519 sign, @noble/ed25519 vs node:crypto', value: `${r('@noble/ed25519 sign')} /s vs ${r('node:crypto sign')} /s (node:crypto ${ed.signRatio.toFixed(1)}x)`, budget: '', verdict: '', how: `bench/ed25519.ts: ${ed.messageBytes}-byte DSSE PAE of an evidence bundle, 1 s per row after warm-up; the agent signs with node:crypto` },
    { figure: 'Ed25519 verify, @noble/ed25519 vs node:crypto', value: `${r('@noble/ed25519 verify (strict)')} /s vs ${r('node:crypto verify')} /s (node:crypto ${ed.verifyRatio.toFixed(1)}x)`, budget: '', verdict: '', how: 'same; noble with zip215: false (RFC 8032 strict, what the agent verifies orders with)' },
  );

  const width = (k: keyof Row) => Math.max(k.length, ...rows.map((x) => x[k].length));
  const cols: (keyof Row)[] = ['figure', 'value', 'budget', 'verdict'];
  console.log('');
  console.log(cols.map((c) => c.padEnd(width(c))).join('  '));
  console.log(cols.map((c) => '-'.repeat(width(c))).join('  '));
  for (const row of rows) console.log(cols.map((c) => row[c].padEnd(width(c))).join('  '));

  const md = [
    '# Benchmark results',
    '',
    `Generated by \`npm run bench\` (bench/run-all.ts) on ${date}.`,
    '',
    `Machine: ${m.cores} x ${m.cpu}, ${m.node}, load average at start ${load} (a shared 2-core VM: other work on it moves every figure; rerun to compare).`,
    '',
    '| figure | value | budget | verdict | how it was measured |',
    '|---|---|---|---|---|',
    ...rows.map((x) => `| ${x.figure} | ${x.value} | ${x.budget} | ${x.verdict} | ${x.how} |`),
    '',
    '## RSS by cycle',
    '',
    `Default flags: ${loop.checkpoints.map((c) => `${c.cycle}: ${c.rssMb.toFixed(1)}`).join(', ')} MB.`,
    '',
    `${RECOMMENDED_NODE_FLAGS.join(' ')}: ${tuned.checkpoints.map((c) => `${c.cycle}: ${c.rssMb.toFixed(1)}`).join(', ')} MB.`,
    '',
    '## Changes made for the budgets',
    '',
    ...CHANGES,
    '',
  ].join('\n');
  writeFileSync(join(REPO, 'bench', 'RESULTS.md'), md);
  console.log('\nwrote bench/RESULTS.md');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
