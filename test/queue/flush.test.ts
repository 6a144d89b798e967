import { describe, expect, it } from 'vitest';
import { flushDestination, type DeliveryResult, type OutboxItem } from '../../src/queue/index.js';
import { row, useStateDb } from './helpers.js';

const T0 = 1_700_000_000_000;
const env = useStateDb();
const ok = (i: OutboxItem): DeliveryResult => ({ kind: 'ok', receiptId: `r-${i.bundleId}` });

function fill(outbox: ReturnType<typeof env.open>['outbox'], n: number, destinations: ('mcp' | 'webhook')[] = ['mcp']): void {
  outbox.batch(() => {
    for (let i = 0; i < n; i++) outbox.enqueue(`b${String(i).padStart(3, '0')}`, `body${i}`, destinations, T0);
  });
}

describe('flushDestination', () => {
  it('delivers everything in enqueue order, in batches, and reports drained', async () => {
    const { outbox } = env.open();
    fill(outbox, 25);
    const batches: string[][] = [];
    const r = await flushDestination(outbox, 'mcp', async (items) => (batches.push(items.map((i) => i.bundleId)), items.map(ok)), { batchSize: 10, now: () => T0 });
    expect(r).toEqual({ delivered: 25, retried: 0, dead: 0, stoppedBy: 'drained' });
    expect(batches.map((b) => b.length)).toEqual([10, 10, 5]);
    expect(batches.flat()).toEqual([...batches.flat()].sort());
    expect(outbox.receipt('mcp', 'b024')).toBe('r-b024');
  });

  it('stops at the first retry: later successes are kept, later failures wait uncharged behind it', async () => {
    const { db, outbox } = env.open({ random: () => 0.5 });
    fill(outbox, 8);
    const results = (items: OutboxItem[]): DeliveryResult[] =>
      items.map((i, k) =>
        k === 2
          ? { kind: 'retry', error: 'HTTP 503' }
          : k === 3
            ? ok(i)
            : k === 4
              ? { kind: 'reject', reason: 'HTTP 422: schema' }
              : k > 4
                ? { kind: 'retry', error: 'HTTP 503' }
                : ok(i),
      );
    const r = await flushDestination(outbox, 'mcp', async (items) => results(items), { batchSize: 6, now: () => T0 });
    expect(r).toEqual({ delivered: 3, retried: 2, dead: 1, stoppedBy: 'retry' });
    expect(row(db, 3)).toMatchObject({ state: 'pending', attempts: 1, last_error: 'HTTP 503', next_attempt_at: T0 + 500, lease_until: 0 });
    expect(row(db, 6)).toMatchObject({ state: 'pending', attempts: 0, next_attempt_at: T0, lease_until: 0 });
    expect(outbox.deadLetters('mcp')).toEqual([{ id: 5, destination: 'mcp', bundleId: 'b004', reason: 'HTTP 422: schema', attempts: 1 }]);

    const early = await flushDestination(outbox, 'mcp', async (items) => items.map(ok), { batchSize: 6, now: () => T0 + 499 });
    expect(early).toEqual({ delivered: 0, retried: 0, dead: 0, stoppedBy: 'not_due' });
    const seen: string[] = [];
    const later = await flushDestination(outbox, 'mcp', async (items) => (seen.push(...items.map((i) => i.bundleId)), items.map(ok)), { batchSize: 6, now: () => T0 + 500 });
    expect(later.stoppedBy).toBe('drained');
    expect(seen).toEqual(['b002', 'b005', 'b006', 'b007']);
  });

  it('treats a throwing deliver, or a wrong number of results, as a retry of the whole batch', async () => {
    const { db, outbox } = env.open({ random: () => 0 });
    fill(outbox, 4);
    const thrown = await flushDestination(
      outbox,
      'mcp',
      async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:443');
      },
      { batchSize: 3, now: () => T0 },
    );
    expect(thrown).toEqual({ delivered: 0, retried: 3, dead: 0, stoppedBy: 'retry' });
    expect(row(db, 1)).toMatchObject({ attempts: 1, last_error: 'connect ECONNREFUSED 127.0.0.1:443' });
    expect(row(db, 2)).toMatchObject({ attempts: 0, lease_until: 0 });

    const short = await flushDestination(outbox, 'mcp', async (items) => items.slice(1).map(ok), { batchSize: 3, now: () => T0 });
    expect(short.stoppedBy).toBe('retry');
    expect(row(db, 1)).toMatchObject({ state: 'pending', attempts: 2, last_error: 'mcp delivery returned 2 result(s) for 3 item(s)' });
  });

  it('honours abort between batches and records the batch already delivered', async () => {
    const { outbox } = env.open();
    fill(outbox, 10);
    const ctl = new AbortController();
    const r = await flushDestination(outbox, 'mcp', async (items) => (ctl.abort(), items.map(ok)), { batchSize: 4, now: () => T0, signal: ctl.signal });
    expect(r).toEqual({ delivered: 4, retried: 0, dead: 0, stoppedBy: 'aborted' });
    expect(outbox.stats(T0)[0]).toMatchObject({ pending: 6, leased: 0, done: 4 });
  });

  it('stops after maxItems', async () => {
    const { outbox } = env.open();
    fill(outbox, 10);
    const r = await flushDestination(outbox, 'mcp', async (items) => items.map(ok), { batchSize: 4, now: () => T0, maxItems: 6 });
    expect(r).toEqual({ delivered: 6, retried: 0, dead: 0, stoppedBy: 'max_items' });
  });

  it('keeps destinations independent: a dead RMM webhook never delays the MCP', async () => {
    const { outbox } = env.open({ maxAttempts: 2, random: () => 0.9 });
    fill(outbox, 5, ['webhook', 'mcp']);
    const w1 = await flushDestination(
      outbox,
      'webhook',
      async () => {
        throw new Error('connect ETIMEDOUT');
      },
      { batchSize: 1, now: () => T0 },
    );
    expect(w1.stoppedBy).toBe('retry');
    const m = await flushDestination(outbox, 'mcp', async (items) => items.map(ok), { batchSize: 2, now: () => T0 });
    expect(m).toEqual({ delivered: 5, retried: 0, dead: 0, stoppedBy: 'drained' });
    const w2 = await flushDestination(outbox, 'webhook', async (items) => items.map(() => ({ kind: 'reject', reason: 'HTTP 404' })), { batchSize: 1, now: () => T0 });
    expect(w2).toEqual({ delivered: 0, retried: 0, dead: 0, stoppedBy: 'not_due' });
    const w3 = await flushDestination(outbox, 'webhook', async (items) => items.map(() => ({ kind: 'reject', reason: 'HTTP 404' })), { batchSize: 1, now: () => T0 + 3_600_000 });
    expect(w3).toEqual({ delivered: 0, retried: 0, dead: 5, stoppedBy: 'drained' });
    expect(outbox.stats(T0 + 3_600_000).map((s) => [s.destination, s.pending, s.dead, s.done])).toEqual([
      ['mcp', 0, 0, 5],
      ['webhook', 0, 5, 0],
      ['syslog', 0, 0, 0],
    ]);
  });
});
