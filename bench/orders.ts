/**
 * Order verification and healing costs. Run: npx tsx bench/orders.ts
 *
 * - checkOrder: stateless verification (size, DSSE/Ed25519, schema, binding, times) of a valid order.
 * - verifyOrder: the same plus replay/sequence check and the durable insert (SQLite WAL,
 *   synchronous=FULL), one transaction per order as the agent does it.
 * - forged: rejection of an order signed by an unknown key (no signature verification needed)
 *   and of one with a bad signature (one verification).
 * - heal round trip: agent handles a heal order, healer re-verifies, restarts a unit on the
 *   simulated host, health-checks, writes the result; agent collects it (simulated commands, real files).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { checkOrder, sqliteOrderState, verifyOrder, type VerifyContext } from '../src/orders/index.js';
import { openStateDb } from '../src/state/index.js';
import { iso, makeKey, orderPayload, signPayload, NOW } from '../test/orders/fixtures.js';
import { setup } from '../test/heal/fixtures.js';

const msp = makeKey('msp');
const ctx: VerifyContext = { trustedKeys: [msp.pub], siteId: 'clinic-001', hostId: 'appliance-1', orderTtlS: 900, ntpMaxSkewMs: 5000, now: NOW };

function rate(what: string, n: number, fn: (i: number) => void): void {
  // The first 50 warm up; the timed run uses the next n (fresh ids, rising sequences).
  for (let i = 0; i < 50; i++) fn(i);
  const t0 = performance.now();
  for (let i = 50; i < n + 50; i++) fn(i);
  const ms = performance.now() - t0;
  console.log(`${what.padEnd(44)} ${String(Math.round((n / ms) * 1000)).padStart(8)} /s   (${n} in ${ms.toFixed(0)} ms)`);
}

const N = Number(process.env.BENCH_N ?? 2000);
const valid = Array.from({ length: N + 50 }, (_, i) => signPayload(orderPayload({ sequence: i + 1 }), msp.secret));
rate('checkOrder (valid order)', N, (i) => checkOrder(valid[i], ctx));

const dir = mkdtempSync(join(tmpdir(), 'bench-orders-'));
const db = openStateDb(join(dir, 'state.db'));
const state = sqliteOrderState(db);
let seq = 0;
const fresh = Array.from({ length: N + 50 }, () => signPayload(orderPayload({ sequence: ++seq, order_id: randomUUID() }), msp.secret));
rate('verifyOrder (valid, durable accept)', N, (i) => {
  const d = verifyOrder(fresh[i], ctx, state);
  if (d.decision !== 'accepted') throw new Error(`unexpected ${d.decision}`);
});
const forger = makeKey('forger');
const forged = signPayload(orderPayload(), forger.secret);
rate('verifyOrder (forged: unknown key)', N, () => verifyOrder(forged, ctx, state));
const badSig = { ...valid[0]!, signatures: [{ keyid: 'msp', sig: forged.signatures[0]!.sig }] };
rate('verifyOrder (bad signature)', N, () => verifyOrder(badSig, ctx, state));
db.close();
rmSync(dir, { recursive: true, force: true });

const rounds = Number(process.env.BENCH_HEALS ?? 50);
const s = setup();
const t0 = performance.now();
for (let i = 0; i < rounds; i++) {
  s.sim.stopService('sshd.service');
  const env = s.order('heal', { checks: ['services'] }, { expires_at: iso(s.sim.now() + 600_000) });
  await s.handleOrder(env, await s.cycle());
  const run = await s.heal();
  if (run.results[0]?.result.outcome !== 'healed') throw new Error('heal did not heal');
  const collected = await s.collectResults(await s.cycle());
  collected.record();
  collected.ack();
}
const ms = performance.now() - t0;
s.cleanup();
console.log(`${'heal round trip (simulated host)'.padEnd(44)} ${(ms / rounds).toFixed(1).padStart(8)} ms each (${rounds} rounds)`);
console.log(`\nnode ${process.version}, ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, ${new Date().toISOString()}`);
