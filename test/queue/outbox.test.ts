import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AgentError } from '../../src/common/index.js';
import { backoffDelay } from '../../src/queue/index.js';
import { row, useStateDb } from './helpers.js';
import { seeded } from '../helpers/fuzz.js';

const T0 = 1_700_000_000_000;
const env = useStateDb();

describe('enqueue', () => {
  it('is idempotent on (destination, bundle_id) and keeps the first body', () => {
    const { db, outbox } = env.open();
    outbox.enqueue('b1', 'first', ['mcp', 'webhook'], T0);
    outbox.enqueue('b1', 'second', ['mcp', 'webhook', 'syslog'], T0 + 5);
    const rows = db.prepare('SELECT destination, body FROM outbox ORDER BY id').all();
    expect(rows).toEqual([
      { destination: 'mcp', body: 'first' },
      { destination: 'webhook', body: 'first' },
      { destination: 'syslog', body: 'second' },
    ]);
  });

  it("joins the caller's transaction: a rollback there un-queues the bundle", () => {
    const { db, outbox } = env.open();
    expect(() =>
      db.transaction(() => {
        outbox.enqueue('b1', 'x', ['mcp'], T0);
        throw new Error('chain write failed');
      })(),
    ).toThrow('chain write failed');
    db.transaction(() => {
      for (let i = 0; i < 50; i++) outbox.enqueue(`g${i}`, 'x', ['mcp'], T0);
    })();
    expect(outbox.stats(T0).find((s) => s.destination === 'mcp')!.pending).toBe(50);
    expect(outbox.receipt('mcp', 'b1')).toBeNull();
    expect(db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE bundle_id = 'b1'").get()).toEqual({ n: 0 });
  });

  it('refuses an unknown destination and an empty bundle id', () => {
    const { outbox } = env.open();
    expect(() => outbox.enqueue('b', 'x', ['ftp' as 'mcp'], T0)).toThrow(/unknown outbox destination "ftp"/);
    expect(() => outbox.enqueue('', 'x', ['mcp'], T0)).toThrow(AgentError);
  });
});

describe('lease', () => {
  it('hands out items of one destination in enqueue order, each once until its lease expires', () => {
    const { outbox } = env.open({ leaseMs: 1000 });
    for (let i = 0; i < 10; i++) outbox.enqueue(`b${i}`, `body${i}`, ['mcp', 'webhook'], T0 + i);
    const first = outbox.lease('mcp', 4, T0 + 100);
    expect(first.map((i) => i.bundleId)).toEqual(['b0', 'b1', 'b2', 'b3']);
    expect(first[0]).toMatchObject({ destination: 'mcp', body: 'body0', attempts: 0, createdAt: T0 });
    expect(outbox.lease('mcp', 4, T0 + 200).map((i) => i.bundleId)).toEqual([]);
    // The head is leased: nothing behind it may overtake, and webhook is its own queue.
    expect(outbox.lease('webhook', 2, T0 + 200).map((i) => i.bundleId)).toEqual(['b0', 'b1']);
    expect(outbox.lease('mcp', 100, T0 + 1100).map((i) => i.bundleId)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8', 'b9']);
  });

  it('returns nothing while the oldest pending item backs off (head of line), then resumes from it', () => {
    const { outbox } = env.open({ random: () => 0.5, baseDelayMs: 1000 });
    for (let i = 0; i < 3; i++) outbox.enqueue(`b${i}`, 'x', ['mcp'], T0);
    const [head] = outbox.lease('mcp', 1, T0);
    outbox.retry(head!.id, 'HTTP 503', T0);
    expect(outbox.lease('mcp', 10, T0 + 499)).toEqual([]);
    expect(outbox.lease('mcp', 10, T0 + 500).map((i) => [i.bundleId, i.attempts])).toEqual([
      ['b0', 1],
      ['b1', 0],
      ['b2', 0],
    ]);
  });

  it("releaseAll voids a killed predecessor's leases at once, without counting an attempt", () => {
    const { outbox } = env.open({ leaseMs: 60_000 });
    for (let i = 0; i < 3; i++) outbox.enqueue(`b${i}`, 'x', ['mcp'], T0);
    outbox.lease('mcp', 2, T0);
    expect(outbox.lease('mcp', 10, T0 + 1)).toEqual([]);
    expect(outbox.releaseAll()).toBe(2);
    expect(outbox.lease('mcp', 10, T0 + 2).map((i) => [i.bundleId, i.attempts])).toEqual([
      ['b0', 0],
      ['b1', 0],
      ['b2', 0],
    ]);
  });

  it('re-delivers leased items after a crash once the lease expires, in the same order', () => {
    const first = env.open({ leaseMs: 60_000 });
    for (let i = 0; i < 5; i++) first.outbox.enqueue(`b${i}`, 'x', ['mcp'], T0);
    const leased = first.outbox.lease('mcp', 3, T0);
    expect(leased).toHaveLength(3);
    // The flusher dies mid-delivery: no ack, no retry. A new process opens the same file.
    const { outbox } = env.reopen({ leaseMs: 60_000 });
    expect(outbox.lease('mcp', 10, T0 + 59_999)).toEqual([]);
    expect(outbox.stats(T0 + 59_999).find((s) => s.destination === 'mcp')).toMatchObject({ pending: 2, leased: 3 });
    const again = outbox.lease('mcp', 10, T0 + 60_000);
    expect(again.map((i) => i.bundleId)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
    expect(again.slice(0, 3).map((i) => i.id)).toEqual(leased.map((i) => i.id));
  });

  it('does not let a backwards clock step park leases or backoffs', () => {
    const { outbox } = env.open({ leaseMs: 60_000, maxDelayMs: 900_000, random: () => 0.99 });
    outbox.enqueue('b0', 'x', ['mcp'], T0);
    outbox.enqueue('b1', 'x', ['webhook'], T0);
    expect(outbox.lease('mcp', 1, T0)).toHaveLength(1);
    const [w] = outbox.lease('webhook', 1, T0);
    for (let i = 0; i < 20; i++) outbox.retry(w!.id, 'down', T0);
    const stepBack = T0 - 3_600_000;
    expect(outbox.lease('mcp', 1, stepBack).map((i) => i.bundleId)).toEqual(['b0']);
    expect(outbox.lease('webhook', 1, stepBack).map((i) => i.bundleId)).toEqual(['b1']);
  });

  it('rejects a non-positive limit', () => {
    const { outbox } = env.open();
    expect(() => outbox.lease('mcp', 0, T0)).toThrow(/positive integer/);
  });
});

describe('backoff', () => {
  it('stays within [0, min(cap, base * 2^failures)) for any jitter (full jitter)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, base, cap, r) => {
          const d = backoffDelay(n, base, cap, () => r);
          const ceiling = Math.min(cap, base * 2 ** n);
          return Number.isInteger(d) && d >= 0 && d < ceiling;
        },
      ),
      seeded('backoff delay bounds', { numRuns: 2000 }),
    );
    expect(backoffDelay(3, 1000, 900_000, () => 0)).toBe(0);
  });

  it('schedules the next attempt at now + random * min(cap, base * 2^failures) and respects the cap', () => {
    let r = 0.5;
    const { db, outbox } = env.open({ baseDelayMs: 1000, maxDelayMs: 15 * 60_000, random: () => r, maxAttempts: 1000 });
    outbox.enqueue('b', 'x', ['mcp'], T0);
    const [item] = outbox.lease('mcp', 1, T0);
    const delays: number[] = [];
    let now = T0;
    for (let n = 0; n < 15; n++) {
      outbox.retry(item!.id, `fail ${n}`, now);
      const next = row(db, item!.id).next_attempt_at;
      delays.push(next - now);
      now = next;
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 450000, 450000, 450000, 450000, 450000]);
    r = 1 - Number.EPSILON;
    for (let n = 0; n < 30; n++) {
      outbox.retry(item!.id, 'fail', now);
      const d = row(db, item!.id).next_attempt_at - now;
      expect(d).toBeLessThan(15 * 60_000);
      expect(d).toBeGreaterThan(15 * 60_000 - 10);
    }
    expect(row(db, item!.id)).toMatchObject({ state: 'pending', attempts: 45, last_error: 'fail', lease_until: 0 });
  });
});

describe('dead letters', () => {
  it('dead-letters after maxAttempts with the last error, and the queue moves on', () => {
    const { outbox } = env.open({ maxAttempts: 3, random: () => 0 });
    outbox.enqueue('b0', 'x', ['mcp'], T0);
    outbox.enqueue('b1', 'x', ['mcp'], T0);
    for (let i = 1; i <= 3; i++) {
      const [head] = outbox.lease('mcp', 1, T0 + i);
      expect(head!.bundleId).toBe('b0');
      outbox.retry(head!.id, `HTTP 503 #${i}`, T0 + i);
    }
    expect(outbox.deadLetters()).toEqual([{ id: 1, destination: 'mcp', bundleId: 'b0', reason: 'too many attempts: HTTP 503 #3', attempts: 3 }]);
    expect(outbox.lease('mcp', 10, T0 + 10).map((i) => i.bundleId)).toEqual(['b1']);
  });

  it('never gives up on retryable failures with maxAttempts Infinity (a 72-hour MCP outage)', () => {
    const { db, outbox } = env.open({ maxAttempts: Infinity });
    outbox.enqueue('b0', 'x', ['mcp'], T0);
    for (let i = 0; i < 1000; i++) outbox.retry(1, 'connect ECONNREFUSED', T0 + i);
    expect(row(db, 1)).toMatchObject({ state: 'pending', attempts: 1000 });
    expect(outbox.deadLetters()).toEqual([]);
  });

  it('dead-letters a rejected item with its reason, filtered by destination', () => {
    const { outbox } = env.open();
    outbox.enqueue('b0', 'x', ['mcp', 'webhook'], T0);
    const [w] = outbox.lease('webhook', 1, T0);
    outbox.dead(w!.id, 'HTTP 400: signature header malformed', T0 + 1);
    expect(outbox.deadLetters('webhook')).toEqual([{ id: w!.id, destination: 'webhook', bundleId: 'b0', reason: 'HTTP 400: signature header malformed', attempts: 1 }]);
    expect(outbox.deadLetters('mcp')).toEqual([]);
    // Recording a result twice (e.g. late) never resurrects or double-counts.
    outbox.retry(w!.id, 'late', T0 + 2);
    outbox.dead(w!.id, 'again', T0 + 2);
    expect(outbox.deadLetters('webhook')[0]).toMatchObject({ reason: 'HTTP 400: signature header malformed', attempts: 1 });
  });

  it('bounds the stored error and reason, whatever a peer sent', () => {
    const { db, outbox } = env.open();
    outbox.enqueue('b0', 'x', ['mcp', 'syslog'], T0);
    outbox.retry(1, `HTTP 500: ${'A'.repeat(1_000_000)}`, T0);
    outbox.dead(2, 'B'.repeat(50_000), T0);
    expect(row(db, 1).last_error).toMatch(/^HTTP 500: A+\.\.\. \(1000010 chars\)$/);
    expect(row(db, 1).last_error!.length).toBeLessThan(2100);
    expect(outbox.deadLetters('syslog')[0]!.reason).toMatch(/^B{2000}\.\.\. \(50000 chars\)$/);
  });

  it('a dead or failing webhook item never delays mcp items', () => {
    const { outbox } = env.open({ random: () => 0.99 });
    for (let i = 0; i < 3; i++) outbox.enqueue(`b${i}`, 'x', ['webhook', 'mcp'], T0);
    const [w0] = outbox.lease('webhook', 1, T0);
    outbox.dead(w0!.id, 'HTTP 410', T0);
    const [w1] = outbox.lease('webhook', 1, T0);
    outbox.retry(w1!.id, 'connect ECONNREFUSED', T0);
    expect(outbox.lease('webhook', 5, T0 + 1)).toEqual([]);
    expect(outbox.lease('mcp', 5, T0 + 1).map((i) => i.bundleId)).toEqual(['b0', 'b1', 'b2']);
  });
});

describe('ack, receipts, stats', () => {
  it('acks record the receipt, drop the body and survive a reopen', () => {
    const first = env.open();
    for (let i = 0; i < 4; i++) first.outbox.enqueue(`b${i}`, 'envelope', ['mcp', 'syslog'], T0 + i * 1000);
    const items = first.outbox.lease('mcp', 2, T0 + 10_000);
    first.outbox.batch(() => items.forEach((it) => first.outbox.ack(it.id, `r-${it.bundleId}`, T0 + 10_000)));
    const [s] = first.outbox.lease('syslog', 1, T0 + 10_000);
    first.outbox.dead(s!.id, 'HTTP 400', T0 + 10_000);
    const before = first.outbox.stats(T0 + 20_000);

    const { db, outbox } = env.reopen();
    expect(outbox.stats(T0 + 20_000)).toEqual(before);
    expect(before).toEqual([
      { destination: 'mcp', pending: 2, leased: 0, undelivered: 2, dead: 0, done: 2, oldestPendingAgeMs: 18_000 },
      { destination: 'webhook', pending: 0, leased: 0, undelivered: 0, dead: 0, done: 0, oldestPendingAgeMs: null },
      { destination: 'syslog', pending: 3, leased: 0, undelivered: 3, dead: 1, done: 0, oldestPendingAgeMs: 19_000 },
    ]);
    // A cycle's depth is the same without the delivered rows, which only `status` counts.
    expect(outbox.depth(T0 + 20_000)).toEqual(before.map(({ done: _done, ...depth }) => depth));
    expect(outbox.receipt('mcp', 'b0')).toBe('r-b0');
    expect(outbox.receipt('mcp', 'b2')).toBeNull();
    expect(outbox.receipt('syslog', 'b0')).toBeNull();
    expect(db.prepare("SELECT body FROM outbox WHERE state = 'done'").pluck().all()).toEqual(['', '']);
    expect(outbox.lease('mcp', 10, T0 + 20_000).map((i) => i.bundleId)).toEqual(['b2', 'b3']);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('counts leased items apart from pending ones and ages the oldest undelivered item', () => {
    const { outbox } = env.open({ leaseMs: 5000 });
    outbox.enqueue('b0', 'x', ['mcp'], T0);
    outbox.enqueue('b1', 'x', ['mcp'], T0 + 1000);
    outbox.lease('mcp', 1, T0 + 2000);
    expect(outbox.stats(T0 + 3000)[0]).toEqual({ destination: 'mcp', pending: 1, leased: 1, undelivered: 2, dead: 0, done: 0, oldestPendingAgeMs: 3000 });
    expect(outbox.pendingCount('mcp', T0 + 3000)).toBe(2);
  });

  it('an ack after a dead letter wins (the receipt proves delivery); unknown ids are errors', () => {
    const { outbox } = env.open();
    outbox.enqueue('b0', 'x', ['mcp'], T0);
    outbox.dead(1, 'HTTP 400', T0);
    outbox.ack(1, 'r0', T0 + 1);
    outbox.ack(1, 'r-other', T0 + 2);
    expect(outbox.receipt('mcp', 'b0')).toBe('r0');
    expect(outbox.deadLetters()).toEqual([]);
    for (const call of [() => outbox.ack(99, 'r', T0), () => outbox.retry(99, 'e', T0), () => outbox.dead(99, 'e', T0), () => outbox.release(99)]) {
      expect(call).toThrow(expect.objectContaining({ code: 'queue_unknown_item' }));
    }
  });

  it('prunes only done rows older than the cutoff', () => {
    const { outbox } = env.open();
    for (let i = 0; i < 3; i++) outbox.enqueue(`b${i}`, 'x', ['mcp'], T0);
    const items = outbox.lease('mcp', 3, T0);
    outbox.ack(items[0]!.id, 'r0', T0 + 100);
    outbox.ack(items[1]!.id, 'r1', T0 + 200);
    outbox.dead(items[2]!.id, 'HTTP 400', T0 + 50);
    expect(outbox.pruneDone(T0 + 150)).toBe(1);
    expect(outbox.receipt('mcp', 'b0')).toBeNull();
    expect(outbox.receipt('mcp', 'b1')).toBe('r1');
    expect(outbox.deadLetters()).toHaveLength(1);
  });

  it('rejects nonsensical options', () => {
    expect(() => env.open({ maxAttempts: 0 })).toThrow(/maxAttempts must be a number >= 1/);
    expect(() => env.open({ leaseMs: Number.NaN })).toThrow(/leaseMs/);
  });
});
