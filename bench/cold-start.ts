/**
 * Cold start to first poll: from spawning the real CLI (`compliance-agent run --config C`) to the
 * MCP receiving its first GET /orders/next over mTLS.
 *
 *   npx tsx bench/cold-start.ts [RUNS]     (default 15; runs `npm run build` first)
 *
 * The MCP here is a minimal mTLS server in this process that notes the arrival time of the first
 * poll and answers 204; the agent is then SIGKILLed (what it does after the poll is not measured).
 * Measured for the shipped agent (bin/compliance-agent: the bundle, started with the launcher's
 * node flags, what the package installs) and, for comparison, the unbundled tsc output on plain
 * node. The first run creates and migrates the state database; the figures are the median and
 * minimum of the runs after it, on the existing state.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startHarness } from '../testing/index.js';
import { REPO, machine, median } from './lib.js';

export interface ColdStartFigures {
  readonly label: string;
  readonly firstRunMs: number;
  readonly medianMs: number;
  readonly minMs: number;
  /** CPU time of the agent's process from exec to its first poll (/proc/PID/schedstat), median: what load moves least. */
  readonly cpuMedianMs: number;
  readonly runs: number;
}

/** Time the process's threads have run on a CPU, ms (first field of each /proc/PID/task/TID/schedstat, in ns). */
function cpuMsOf(pid: number | undefined): number {
  const tasks = readdirSync(`/proc/${pid}/task`);
  return tasks.reduce((ms, tid) => ms + Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6, 0);
}

async function timeToFirstPoll(waiters: ((t: number) => void)[], command: readonly string[], config: string): Promise<{ wallMs: number; cpuMs: number }> {
  let cpuMs = NaN;
  // Read when the poll arrives, before the agent goes on: its CPU time up to its first poll.
  const firstPoll = new Promise<number>((resolve) =>
    waiters.push((t) => {
      cpuMs = cpuMsOf(child.pid);
      resolve(t);
    }),
  );
  const start = performance.now();
  // The launcher finds node on PATH: this node.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
  const child = spawn(command[0]!, [...command.slice(1), 'run', '--config', config], { cwd: REPO, stdio: 'ignore', env });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no poll within 10 s')), 10_000)));
  try {
    const wallMs = (await Promise.race([firstPoll, timeout, exited.then((code) => Promise.reject(new Error(`agent exited ${code} before polling`)))])) - start;
    return { wallMs, cpuMs };
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
    await exited;
  }
}

export async function measureColdStart(runs = 15, build = true): Promise<ColdStartFigures[]> {
  if (build) execFileSync('npm', ['run', 'build'], { cwd: REPO, stdio: 'ignore' });
  const dir = mkdtempSync(join(tmpdir(), 'ca-bench-cold-'));
  const h = await startHarness(dir);
  const waiters: ((t: number) => void)[] = [];
  const server = createServer(
    { key: readFileSync(h.pki.serverKey), cert: readFileSync(h.pki.serverCert), ca: readFileSync(h.pki.caCert), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      if (req.method === 'GET' && req.url?.startsWith('/orders/next')) waiters.shift()?.(performance.now());
      res.writeHead(204).end();
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const base = JSON.parse(readFileSync(h.configPath, 'utf8')) as Record<string, unknown>;
    const variants: [string, string[]][] = [
      ['bin/compliance-agent (shipped: bundle, node flags)', [join(REPO, 'bin', 'compliance-agent')]],
      ['node dist/src/cli.js (unbundled, default flags)', [process.execPath, join(REPO, 'dist', 'src', 'cli.js')]],
    ];
    const out: ColdStartFigures[] = [];
    for (const [label, command] of variants) {
      const config = join(dir, `${label.replace(/\W+/g, '-')}.json`);
      writeFileSync(config, JSON.stringify({ ...base, mcpUrl: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, stateDir: join(dir, `state-${out.length}`) }));
      const times: { wallMs: number; cpuMs: number }[] = [];
      for (let i = 0; i <= runs; i++) times.push(await timeToFirstPoll(waiters, command, config));
      const warm = times.slice(1);
      const wall = warm.map((t) => t.wallMs);
      out.push({ label, firstRunMs: times[0]!.wallMs, medianMs: median(wall), minMs: Math.min(...wall), cpuMedianMs: median(warm.map((t) => t.cpuMs)), runs });
    }
    return out;
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const m = machine();
  console.log(`cold start to first poll: ${m.cores} x ${m.cpu}, node ${m.node}`);
  for (const f of await measureColdStart(Number(process.argv[2] ?? 15))) {
    console.log(
      `${f.label.padEnd(52)} median ${f.medianMs.toFixed(0)} ms (CPU ${f.cpuMedianMs.toFixed(0)} ms), min ${f.minMs.toFixed(0)} ms over ${f.runs} runs (first run, creating the state: ${f.firstRunMs.toFixed(0)} ms)`,
    );
  }
}
