/**
 * Durable enqueue and ack rates of the SQLite outbox (WAL, synchronous=FULL: every commit is
 * fsynced before it returns). Run: npx tsx bench/enqueue.ts   (BENCH_DIR=/var/lib/... to measure
 * another filesystem; the default is the OS temp dir).
 *
 * Each row runs on a fresh database for about BENCH_SECONDS (default 1), BENCH_ROUNDS times (default
 * 3, rows interleaved because fsync latency on shared disks drifts), and prints the median
 * bundles/s with the range, commits/s, and bundles per second of this process's CPU time (what
 * the fsync waits of a loaded disk do not move). "1/tx" commits every bundle on its own; "50/tx" is group commit: 50 bundles share one
 * transaction, the way the agent's cycle commits all its bundles at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStateDb, type StateDb } from '../src/state/index.js';
import { Outbox, flushDestination, type Destination } from '../src/queue/index.js';
import { EvidenceChain } from '../src/evidence/index.js';
import { publicKeyOf, randomSeed, type SecretKey } from '../src/crypto/index.js';
import { sampleDraft } from '../test/helpers/evidence.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BASE = process.env.BENCH_DIR ?? tmpdir();
const seed = randomSeed();
const key: SecretKey = { keyId: 'bench', seed, publicKey: publicKeyOf(seed) };

interface Row {
  readonly what: string;
  readonly perTx: number;
  readonly units: number;
  readonly commits: number;
  readonly ms: number;
  /** This process's CPU time over the row (not the fsync waits, which the disk and its load decide). */
  readonly cpuMs: number;
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

function withDb<T>(fn: (db: StateDb) => T): T {
  const dir = mkdtempSync(join(BASE, 'ca-bench-queue-'));
  const db = openStateDb(join(dir, 'state.db'));
  try {
    return fn(db);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Repeat `step` (which handles `perTx` units in one commit) until the time budget is spent. */
function timed(what: string, perTx: number, step: (i: number) => void): Row {
  const deadline = performance.now() + SECONDS * 1000;
  const start = performance.now();
  const cpu = process.cpuUsage();
  let commits = 0;
  while (performance.now() < deadline) step(commits++);
  return { what, perTx, units: commits * perTx, commits, ms: performance.now() - start, cpuMs: cpuMs(cpu) };
}

/** A real signed envelope, so rows are the size the agent writes. */
const BODY = withDb((db) => {
  const sink = { enqueue: () => undefined };
  return new EvidenceChain(db, key, sink).append([sampleDraft()], ['mcp'], Date.now())[0]!.envelope;
});

function enqueueRow(perTx: number, destinations: readonly Destination[]): Row {
  return withDb((db) => {
    const outbox = new Outbox(db);
    let n = 0;
    const tx = db.transaction(() => {
      for (let k = 0; k < perTx; k++, n++) outbox.enqueue(`bundle-${n}`, BODY, destinations, Date.now());
    });
    return timed(`outbox.enqueue -> ${destinations.join('+')}`, perTx, () => tx());
  });
}

function chainRow(perTx: number): Row {
  return withDb((db) => {
    const chain = new EvidenceChain(db, key, new Outbox(db));
    return timed('sign+chain+store+enqueue -> mcp', perTx, () =>
      chain.append(
        Array.from({ length: perTx }, () => sampleDraft()),
        ['mcp'],
        Date.now(),
      ),
    );
  });
}

async function ackRow(perTx: number): Promise<Row> {
  const dir = mkdtempSync(join(BASE, 'ca-bench-queue-'));
  const db = openStateDb(join(dir, 'state.db'));
  try {
    const outbox = new Outbox(db);
    const total = 20_000;
    db.transaction(() => {
      for (let n = 0; n < total; n++) outbox.enqueue(`bundle-${n}`, BODY, ['mcp'], 0);
    })();
    const start = performance.now();
    const cpu = process.cpuUsage();
    const deadline = start + SECONDS * 1000;
    let units = 0;
    let commits = 0;
    while (performance.now() < deadline && units < total) {
      // lease (one commit) + deliver (instant) + record all acks (one commit), as flush does it.
      const r = await flushDestination(outbox, 'mcp', async (items) => items.map((i) => ({ kind: 'ok', receiptId: `r-${i.id}` })), {
        batchSize: perTx,
        now: Date.now,
        maxItems: perTx,
      });
      units += r.delivered;
      commits += 2;
    }
    return { what: 'lease+ack (flushDestination) mcp', perTx, units, commits, ms: performance.now() - start, cpuMs: cpuMs(cpu) };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const scenarios: (() => Row | Promise<Row>)[] = [
  ...[1, 10, 50, 200].map((perTx) => () => enqueueRow(perTx, ['mcp'])),
  ...[1, 50].map((perTx) => () => enqueueRow(perTx, ['mcp', 'webhook', 'syslog'])),
  ...[1, 50].map((perTx) => () => chainRow(perTx)),
  ...[1, 50, 200].map((perTx) => () => ackRow(perTx)),
];
const runs: Row[][] = scenarios.map(() => []);
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, scenario] of scenarios.entries()) runs[i]!.push(await scenario());
}

const probe = withDb((db) => ({ journal: db.pragma('journal_mode', { simple: true }), sync: db.pragma('synchronous', { simple: true }) }));
console.log(`outbox benchmark: node ${process.version}, ${cpus()[0]?.model ?? 'cpu?'} x${cpus().length}, dir ${BASE}`);
console.log(`journal_mode=${String(probe.journal)} synchronous=${String(probe.sync)} (2 = FULL), envelope ${BODY.length} bytes, ${ROUNDS} rounds of ~${SECONDS}s per row\n`);
const rate = (r: Row, n: number) => n / (r.ms / 1000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const header = ['operation', 'bundles/tx', 'commits/s', 'bundles/s (median)', 'range', 'bundles per CPU-s'];
const table = runs.map((rs) => {
  const bps = rs.map((r) => rate(r, r.units));
  const perCpu = median(rs.map((r) => r.units / (r.cpuMs / 1000)));
  return [
    rs[0]!.what,
    String(rs[0]!.perTx),
    median(rs.map((r) => rate(r, r.commits))).toFixed(0),
    median(bps).toFixed(0),
    `${Math.min(...bps).toFixed(0)}-${Math.max(...bps).toFixed(0)}`,
    perCpu.toFixed(0),
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const t of table) console.log(line(t));
