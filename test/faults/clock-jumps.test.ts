import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../testing/index.js';
import { isoSeconds, type AgentRuntime } from '../../src/agent/index.js';
import { EVIDENCE_PAYLOAD_TYPE, verifyEnvelope, type Envelope } from '../../src/crypto/index.js';
import { EvidenceBundleSchema, type EvidenceBundle } from '../../src/evidence/index.js';
import { openStateDb, stateLayout, type StateDb } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

// The appliance's clock steps (a dead RTC corrected by NTP, a VM restored from a snapshot): the
// agent keeps delivering, keeps reporting, and neither the window nor order freshness is fooled.
const DAY = 86_400_000;
const MIN = 60_000;
const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const tmp = tempDir('ca-faults-clock-');
let h: Harness;
let rt: AgentRuntime;
let db: StateDb;

beforeAll(async () => {
  // Window 02:00-04:00 UTC (the default); orders live 6 hours.
  h = await startHarness(tmp.path, { config: { orderTtl: 6 * 3600, heartbeatInterval: 3600 }, appliance: { now: T0 } });
  rt = h.openAgent();
  db = openStateDb(stateLayout(h.config.stateDir).db);
});
afterAll(async () => {
  db?.close();
  await rt?.close();
  await h?.close();
  tmp.cleanup();
});

function received(): EvidenceBundle[] {
  return [...h.mcp.evidence().values()]
    .map((e) => {
      const v = verifyEnvelope(e.envelope, EVIDENCE_PAYLOAD_TYPE, [h.agentPublicKey]);
      if (!v.ok) throw new Error(v.message);
      return EvidenceBundleSchema.parse(JSON.parse(v.payload.toString('utf8')));
    })
    .sort((a, b) => a.seq - b.seq);
}

const orderIdOf = (env: Envelope): string => (JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as { order_id: string }).order_id;
const outcomesOf = (env: Envelope): string[] =>
  received()
    .filter((b) => b.order_id === orderIdOf(env))
    .map((b) => b.outcome);

const head = () =>
  db.prepare("SELECT attempts, next_attempt_at FROM outbox WHERE destination = 'mcp' AND state = 'pending' ORDER BY id LIMIT 1").get() as
    { attempts: number; next_attempt_at: number } | undefined;

/** Evidence envelopes the MCP received during one cycle. */
async function cycleCountingPosts(): Promise<number> {
  const posts = h.mcp.stats().posts;
  await rt.agent.cycle();
  return h.mcp.stats().posts - posts;
}

describe('the queue across clock steps', () => {
  it('a backward step after an outage: the backlog goes out at once, nothing is parked', async () => {
    await rt.agent.cycle();
    h.mcp.setFault('down');
    for (let i = 0; i < 3; i++) {
      h.host.advance(16 * MIN);
      h.host.stopService(i % 2 ? 'sshd.service' : 'postgresql.service');
      await rt.agent.cycle();
    }
    const parked = head()!;
    expect(parked.attempts).toBe(3);
    expect(parked.next_attempt_at).toBeGreaterThanOrEqual(h.host.now());

    // Two days back: every backoff and lease now lies further ahead than the outbox could have set.
    h.mcp.setFault(null);
    h.host.setNow(h.host.now() - 2 * DAY);
    await rt.agent.cycle();
    expect(rt.agent.pending()).toBe(0);
  });

  it('an outage after the backward step: one attempt per cycle, backoff from the new clock, no tight loop', async () => {
    h.mcp.setFault('down');
    const attempts: number[] = [];
    for (let i = 0; i < 4; i++) {
      h.host.advance(16 * MIN);
      await rt.agent.cycle();
      const r = head()!;
      attempts.push(r.attempts);
      expect(r.next_attempt_at).toBeGreaterThanOrEqual(h.host.now());
      expect(r.next_attempt_at).toBeLessThanOrEqual(h.host.now() + 15 * MIN);
    }
    expect(attempts).toEqual([1, 2, 3, 4]);
    // A cycle whose head is not due yet makes no attempt at all.
    h.mcp.setFault(null);
    const notDue = head()!.next_attempt_at > h.host.now() + 1 ? await cycleCountingPosts() : 0;
    expect(notDue).toBe(0);
  });

  it('a forward step of 30 days: the backlog goes out at once', async () => {
    h.host.setNow(h.host.now() + 30 * DAY);
    await rt.agent.cycle();
    expect(rt.agent.pending()).toBe(0);
    const seqs = received().map((b) => b.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });
});

describe('reporting across a backward step', () => {
  it('heartbeats continue when the clock steps back a year: due an interval after the step, not a year later', async () => {
    h.host.setNow(T0 + 40 * DAY);
    await rt.agent.cycle();
    h.host.advance(h.config.heartbeatInterval * 1000);
    await rt.agent.cycle();
    const before = received().length;

    h.host.setNow(T0 + 40 * DAY - 365 * DAY);
    await rt.agent.cycle();
    h.host.advance(h.config.heartbeatInterval * 1000);
    await rt.agent.cycle();
    // (backup reports its stamp "in the future" as an error, which is a change of its own.)
    // (control_plane: 40 days without an MSP-signed order is rightly stale; not what this test is about.)
    const checks = new Set(
      received()
        .slice(before)
        .map((b) => b.check)
        .filter((c) => c !== 'control_plane'),
    );
    expect([...checks].sort()).toEqual(['backup', 'encryption', 'firewall', 'patching', 'services', 'time']);
  });

  it('an outage that spans a backward step keeps re-alerting every heartbeat interval', async () => {
    const before = received().length;
    h.host.setNow(T0 + 50 * DAY);
    h.mcp.setFault('down');
    await rt.agent.cycle();
    h.host.setNow(T0 + 50 * DAY - 365 * DAY);
    await rt.agent.cycle();
    h.host.advance(h.config.heartbeatInterval * 1000);
    await rt.agent.cycle();
    h.mcp.setFault(null);
    h.host.advance(16 * MIN);
    await rt.agent.cycle();
    const alerts = received()
      .slice(before)
      .filter((b) => b.check === 'mcp')
      .map((b) => [b.outcome, b.timestamp_start]);
    // At the outage's start, at the step (the last alert is now a year "ahead"), an interval later, and its end.
    expect(alerts).toEqual([
      ['failed', isoSeconds(T0 + 50 * DAY)],
      ['failed', isoSeconds(T0 + 50 * DAY - 365 * DAY)],
      ['failed', isoSeconds(T0 + 50 * DAY - 365 * DAY + h.config.heartbeatInterval * 1000)],
      ['compliant', expect.any(String)],
    ]);
  });
});

describe('orders and the window across clock steps', () => {
  it('an order signed before a forward step past its TTL is rejected as expired, nothing acted on', async () => {
    h.host.setNow(Date.UTC(2027, 0, 10, 12, 0, 0));
    await rt.agent.cycle();
    h.host.stopService('sshd.service');
    h.mcp.enqueueOrder(h.signOrder('heal', { checks: ['services'] }));
    h.host.clearExecuted();
    h.host.advance(7 * 3600_000);
    await rt.agent.cycle();
    expect(h.host.actions()).toEqual([]);
    const rejected = received()
      .filter((b) => b.outcome === 'rejected')
      .pop()!;
    expect(rejected.reason).toMatch(/expired/);
  });

  it('an order from the MSP reaching an appliance whose clock stepped a day back is issued in the future: rejected', async () => {
    const order = h.signOrder('heal', { checks: ['services'] });
    h.mcp.enqueueOrder(order);
    h.host.advance(-DAY);
    h.host.clearExecuted();
    await rt.agent.cycle();
    expect(h.host.actions()).toEqual([]);
    expect(
      received()
        .filter((b) => b.outcome === 'rejected')
        .pop()!.reason,
    ).toMatch(/issued_in_future|ahead of this clock/);
    h.host.advance(DAY);
  });

  it('a disruptive heal deferred at noon: a backward step into the window does not apply it; a forward step into the next window does', async () => {
    // Noon, outside 02:00-04:00: a restart of nftables.service (disruptive) is held, up to its execute_by.
    h.host.setNow(Date.UTC(2027, 0, 12, 12, 0, 0));
    for (const unit of ['sshd.service', 'postgresql.service']) await h.host.exec('systemctl', ['start', unit], { timeoutMs: 1000 });
    h.host.stopService('nftables.service');
    const within = (hours: number) => ({ execute_by: new Date(h.host.now() + hours * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    const first = h.signOrder('heal', { checks: ['services'] }, within(36));
    h.mcp.enqueueOrder(first);
    h.host.clearExecuted();
    await rt.agent.cycle();
    expect(h.host.actions()).toEqual([]);
    expect(outcomesOf(first)).toEqual(['deferred']);

    // Back to 02:30 the same day: inside the window, but the order was issued 9.5 h "later": dropped, not applied.
    h.host.setNow(Date.UTC(2027, 0, 12, 2, 30, 0));
    await rt.agent.cycle();
    expect(h.host.actions()).toEqual([]);
    expect(outcomesOf(first)).toEqual(['deferred', 'failed']);
    expect(
      received()
        .filter((b) => b.order_id === orderIdOf(first))
        .pop()!.reason,
    ).toMatch(/^held order no longer valid, not applied: issued_in_future/);

    // A fresh order at 23:00, deferred; the clock steps to 02:30 the next day (inside its 6 h TTL): applied in the window.
    h.host.setNow(Date.UTC(2027, 0, 12, 23, 0, 0));
    const second = h.signOrder('heal', { checks: ['services'] });
    h.mcp.enqueueOrder(second);
    await rt.agent.cycle();
    expect(h.host.actions()).toEqual([]);
    h.host.setNow(Date.UTC(2027, 0, 13, 2, 30, 0));
    await rt.agent.cycle();
    expect(h.host.actions()).toEqual(['systemctl restart -- nftables.service']);
    expect(new Date(h.host.executed.find((e) => e.args[0] === 'restart')!.at).getUTCHours()).toBe(2);
    expect(outcomesOf(second)).toEqual(['deferred', 'healed']);

    // Forward out of the window to 05:00: another disruptive heal waits again.
    h.host.setNow(Date.UTC(2027, 0, 13, 5, 0, 0));
    h.host.stopService('nftables.service');
    h.host.clearExecuted();
    const third = h.signOrder('heal', { checks: ['services'] }, within(36));
    h.mcp.enqueueOrder(third);
    await rt.agent.cycle();
    expect(h.host.actions()).toEqual([]);
    expect(outcomesOf(third)).toEqual(['deferred']);
  });
});
