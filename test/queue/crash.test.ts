import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openStateDb } from '../../src/state/index.js';
import { Outbox, flushDestination, type DeliveryResult, type OutboxItem } from '../../src/queue/index.js';
import { tempDir } from '../helpers/tmp.js';

const CHILD = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));
// A fixed number of kills, however long a loaded machine takes for them: no time budget decides.
const KILLS = 30;

/**
 * The MCP side of "no evidence is lost": every POST is logged as it arrives (the wire), and stored
 * idempotently by bundle_id (what the MCP can tell). It misbehaves like a real one: sometimes a
 * 503 before storing, sometimes a 503 after storing (the client must resend), and slow replies.
 */
class Receiver {
  readonly wire: number[][] = [];
  readonly store = new Map<string, { key: number; receipt: string }>();
  readonly firstSeen: number[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const roll = Math.random();
        if (roll < 0.05) return void res.writeHead(503).end();
        const items = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { bundle_id: string; key: number }[];
        this.wire.push(items.map((i) => i.key));
        const receipts = items.map((i) => {
          let stored = this.store.get(i.bundle_id);
          if (!stored) {
            stored = { key: i.key, receipt: `rcpt-${i.bundle_id}` };
            this.store.set(i.bundle_id, stored);
            this.firstSeen.push(i.key);
          }
          return stored.receipt;
        });
        setTimeout(
          () => {
            if (roll < 0.1) res.writeHead(503).end();
            else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(receipts));
          },
          Math.floor(Math.random() * 15),
        );
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/evidence`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const receiver = new Receiver();
const dir = tempDir('ca-queue-crash-');
beforeAll(() => receiver.start());
afterAll(async () => {
  await receiver.stop();
  dir.cleanup();
});

/** Start the child, wait until it is working, let it run a random while, then SIGKILL it. */
async function runAndKill(dbPath: string, run: number, attempted: Set<number>, committed: Set<number>): Promise<void> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD, dbPath, receiver.url, String(run)], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let buffered = '';
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout!.on('data', (c: Buffer) => {
    buffered += c.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const [word, key] = line.split(' ');
      if (word === 'ready') ready();
      else if (word === 'try') attempted.add(Number(key));
      else if (word === 'ok') committed.add(Number(key));
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  await Promise.race([isReady, exited]);
  await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 250)));
  child.kill('SIGKILL');
  const { code, signal } = await exited;
  // It must have died by our hand, not by its own error.
  expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGKILL', stderr: '' });
}

async function deliver(items: OutboxItem[]): Promise<DeliveryResult[]> {
  const res = await fetch(receiver.url, { method: 'POST', body: `[${items.map((i) => i.body).join(',')}]` });
  if (res.status !== 200) return items.map(() => ({ kind: 'retry', error: `HTTP ${res.status}` }));
  return ((await res.json()) as string[]).map((receiptId) => ({ kind: 'ok', receiptId }));
}

it(`loses nothing and stores nothing twice across ${KILLS} kill -9 of the enqueuing, flushing process`, async () => {
  const dbPath = join(dir.path, 'state.db');
  const attempted = new Set<number>();
  const committed = new Set<number>();
  let runs = 0;
  while (runs < KILLS) await runAndKill(dbPath, ++runs, attempted, committed);

  // Restart once more and drain what the last victims left behind.
  const db = openStateDb(dbPath);
  const outbox = new Outbox(db, { leaseMs: 250, baseDelayMs: 5, maxDelayMs: 100, maxAttempts: 1e9 });
  let drained = false;
  for (let round = 0; round < 2_000 && !drained; round++) {
    drained = (await flushDestination(outbox, 'mcp', deliver, { batchSize: 50, now: Date.now })).stoppedBy === 'drained';
    if (!drained) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(drained).toBe(true);

  expect(committed.size).toBeGreaterThan(runs);
  const storedKeys = new Set([...receiver.store.values()].map((s) => s.key));
  // Every bundle reported committed reached the receiver ...
  expect([...committed].filter((k) => !storedKeys.has(k))).toEqual([]);
  // ... and nothing arrived that was never enqueued.
  expect([...storedKeys].filter((k) => !attempted.has(k))).toEqual([]);
  // Duplicates on the wire are allowed; the idempotent store holds each bundle exactly once.
  expect(receiver.firstSeen.length).toBe(receiver.store.size);
  expect(new Set(receiver.wire.flat()).size).toBe(receiver.store.size);
  // Order: every batch is in enqueue order, and no bundle first arrives before an older one.
  for (const batch of receiver.wire) expect(batch).toEqual([...batch].sort((a, b) => a - b));
  const outOfOrder = receiver.firstSeen.filter((k, i) => i > 0 && k <= receiver.firstSeen[i - 1]!);
  expect(outOfOrder).toEqual([]);
  // The queue agrees with the receiver: every row done, with the receipt the receiver issued.
  expect(outbox.stats(Date.now())[0]).toMatchObject({ pending: 0, leased: 0, dead: 0, done: receiver.store.size });
  for (const [bundleId, s] of receiver.store) expect(outbox.receipt('mcp', bundleId)).toBe(s.receipt);
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  db.close();
}, 600_000);
