import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { clockSanity, decideTiming, parseWindow, spoolPaths, writeHealRequest, type HealAction } from '../../src/heal/index.js';
import type { CheckResult } from '../../src/checks/index.js';
import { SAMPLE_FLAKE_REF } from '../../src/host/index.js';
import { iso } from '../orders/fixtures.js';
import { activateSteps, assertValidDrafts, IN_WINDOW, OUT_OF_WINDOW, setup, type Setup } from './fixtures.js';

let s: Setup | undefined;
afterEach(() => {
  s?.cleanup();
  s = undefined;
});

const requests = (t: Setup) => readdirSync(spoolPaths(t.stateDir).requests);
const pending = (t: Setup) => readdirSync(spoolPaths(t.stateDir).pending);

function timeResult(status: CheckResult['status'], observed: Record<string, unknown>): CheckResult[] {
  return [{ check: 'time', status, summary: `time ${status}`, observed, expected: {}, durationMs: 1 }];
}

describe('clock sanity from the time check', () => {
  it('sane only when the check is compliant, synchronised and within ntpMaxSkewMs', () => {
    expect(clockSanity(timeResult('compliant', { synchronised: true, offsetMs: 3 }), 5000)).toEqual({ sane: true, offsetMs: 3 });
    expect(clockSanity(timeResult('compliant', { synchronised: true, offsetMs: null }), 5000).sane).toBe(true);
    expect(clockSanity(timeResult('drift', { synchronised: true, offsetMs: 9000 }), 5000).sane).toBe(false);
    expect(clockSanity(timeResult('drift', { synchronised: false, offsetMs: null }), 5000).sane).toBe(false);
    expect(clockSanity(timeResult('error', {}), 5000).sane).toBe(false);
    expect(clockSanity(timeResult('compliant', { synchronised: false }), 5000).sane).toBe(false);
    expect(clockSanity(timeResult('compliant', { synchronised: true, offsetMs: 7000 }), 5000).sane).toBe(false);
    expect(clockSanity([], 5000)).toMatchObject({ sane: false, reason: 'clock not sane: no time check result' });
  });
});

describe('decideTiming (invariant 2)', () => {
  const sane = { sane: true as const, offsetMs: 1 };
  const window = parseWindow('02:00-04:00');
  const rebuild: HealAction = { kind: 'rebuild_switch', flakeRef: SAMPLE_FLAKE_REF };
  const sshd: HealAction = { kind: 'restart_unit', unit: 'sshd.service' };
  const journald: HealAction = { kind: 'restart_unit', unit: 'systemd-journald.service' };

  it('acts on non-disruptive actions at any time, even with a bad clock', () => {
    expect(decideTiming([sshd, { kind: 'start_backup', unit: 'b.service' }], { window, allowDisruptiveOutsideWindow: false, clock: { sane: false, offsetMs: 1e6, reason: 'x' }, now: OUT_OF_WINDOW })).toEqual({ act: true });
  });

  it('defers a rebuild, a rollback and a journald restart outside the window, with when it opens', () => {
    for (const a of [rebuild, { kind: 'rollback' } as HealAction, journald]) {
      const t = decideTiming([a], { window, allowDisruptiveOutsideWindow: false, clock: sane, now: OUT_OF_WINDOW });
      expect(t).toMatchObject({ act: false, retryAt: Date.UTC(2026, 10, 24, 2, 0, 0) });
    }
  });

  it('acts inside the window, or outside when allowDisruptiveOutsideWindow', () => {
    expect(decideTiming([rebuild], { window, allowDisruptiveOutsideWindow: false, clock: sane, now: IN_WINDOW })).toEqual({ act: true });
    expect(decideTiming([rebuild], { window, allowDisruptiveOutsideWindow: true, clock: sane, now: OUT_OF_WINDOW })).toEqual({ act: true });
  });

  it('an insane clock defers disruptive work even inside the window and even when outside is allowed', () => {
    const bad = { sane: false as const, offsetMs: 60_000, reason: 'clock not sane: 60000 ms off' };
    expect(decideTiming([rebuild], { window, allowDisruptiveOutsideWindow: true, clock: bad, now: IN_WINDOW })).toMatchObject({ act: false, reason: expect.stringContaining('clock not sane') });
  });
});

describe('deferred, then applied when the window opens (simulated clock)', () => {
  it('outside the window: deferred with evidence and no request; quiet while waiting; applied once the window opens', async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 12, 0, 0), config: { maintenanceWindow: '12:30-13:30', orderTtl: 3600 } });
    s.sim.setRunningRevision('1111111111111111111111111111111111111111');
    const env = s.order('heal', { checks: ['patching'] }, { expires_at: iso(s.sim.now() + 3_600_000) });
    const handled = await s.healing.handleOrder(env, await s.cycle());
    expect(handled.accepted).toBe(true);
    expect(handled.drafts).toHaveLength(1);
    assertValidDrafts(handled.drafts);
    expect(handled.drafts[0]).toMatchObject({ outcome: 'deferred', check: 'patching', action_taken: [] });
    expect(handled.drafts[0]!.reason).toContain('outside the maintenance window 12:30-13:30 UTC; next opens 2026-11-23T12:30:00.000Z');
    expect(requests(s)).toEqual([]);
    expect(pending(s)).toHaveLength(1);

    s.sim.advance(10 * 60_000);
    const waiting = await s.healing.collect(await s.cycle());
    expect(waiting.drafts).toEqual([]);
    expect(waiting.promoted).toEqual([]);
    expect((await s.heal()).results).toEqual([]);
    expect(s.sim.actions()).toEqual([]);

    s.sim.setNow(Date.UTC(2026, 10, 23, 12, 31, 0));
    const opened = await s.healing.collect(await s.cycle());
    expect(opened.promoted).toHaveLength(1);
    expect(pending(s)).toEqual([]);
    const run = await s.heal();
    expect(run.results[0]?.result.outcome).toBe('healed');
    expect(s.sim.actions()).toEqual(activateSteps(s.sim.currentGeneration().storePath));
    const collected = await s.healing.collect(await s.cycle());
    expect(collected.drafts.map((d) => [d.outcome, d.order_id])).toEqual([['healed', handled.drafts[0]!.order_id]]);
  });

  it('a window crossing midnight (23:50-00:20): deferred at 23:40, applied at 00:05 the next day', async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 23, 40, 0), config: { maintenanceWindow: '23:50-00:20', orderTtl: 3600 } });
    s.sim.setRunningRevision('2222222222222222222222222222222222222222');
    const env = s.order('heal', { checks: ['patching'] }, { expires_at: iso(s.sim.now() + 3_600_000) });
    const handled = await s.healing.handleOrder(env, await s.cycle());
    expect(handled.drafts[0]).toMatchObject({ outcome: 'deferred' });
    expect(handled.drafts[0]!.reason).toContain('next opens 2026-11-23T23:50:00.000Z');
    s.sim.setNow(Date.UTC(2026, 10, 24, 0, 5, 0));
    expect((await s.healing.collect(await s.cycle())).promoted).toHaveLength(1);
    expect((await s.heal()).results[0]?.result.outcome).toBe('healed');
  });

  it('a deferred order that expires before the window opens is dropped with evidence, never applied', async () => {
    s = setup({ now: OUT_OF_WINDOW });
    s.sim.setRunningRevision('3333333333333333333333333333333333333333');
    const handled = await s.healing.handleOrder(s.order('heal', { checks: ['patching'] }), await s.cycle());
    expect(handled.drafts[0]).toMatchObject({ outcome: 'deferred' });
    s.sim.setNow(Date.UTC(2026, 10, 24, 2, 5, 0));
    const collected = await s.healing.collect(await s.cycle());
    assertValidDrafts(collected.drafts);
    expect(collected.drafts).toHaveLength(1);
    expect(collected.drafts[0]).toMatchObject({ outcome: 'failed', check: 'order', order_id: handled.drafts[0]!.order_id });
    expect(collected.drafts[0]!.reason).toMatch(/^deferred order no longer valid, not applied: expired/);
    expect(pending(s)).toEqual([]);
    expect(requests(s)).toEqual([]);
  });

  it('journald restart counts as disruptive: deferred outside the window, while an sshd restart goes ahead', async () => {
    s = setup({ now: OUT_OF_WINDOW });
    s.sim.stopService('systemd-journald.service');
    const j = await s.healing.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    expect(j.drafts[0]).toMatchObject({ outcome: 'deferred' });
    expect(j.drafts[0]!.reason).toContain('systemctl restart systemd-journald.service');
    expect(requests(s)).toEqual([]);

    const t = setup({ now: OUT_OF_WINDOW });
    try {
      t.sim.stopService('sshd.service');
      const h = await t.healing.handleOrder(t.order('heal', { checks: ['services'] }), await t.cycle());
      expect(h.drafts).toEqual([]);
      expect(h.requestId).not.toBeNull();
      expect((await t.heal()).results[0]?.result.outcome).toBe('healed');
      expect(t.sim.actions()).toEqual(['systemctl restart sshd.service']);
    } finally {
      t.cleanup();
    }
  });

  it('allowDisruptiveOutsideWindow lets a rebuild run outside the window', async () => {
    s = setup({ now: OUT_OF_WINDOW, config: { allowDisruptiveOutsideWindow: true } });
    s.sim.setRunningRevision('4444444444444444444444444444444444444444');
    const h = await s.healing.handleOrder(s.order('heal', { checks: ['patching'] }), await s.cycle());
    expect(h.drafts).toEqual([]);
    expect((await s.heal()).results[0]?.result.outcome).toBe('healed');
  });
});

describe('a skewed clock defers (invariant 2)', () => {
  it('inside the window with the clock 30 s off: deferred; applied once NTP is back in sync', async () => {
    s = setup({ config: { orderTtl: 3600 } });
    s.sim.setRunningRevision('5555555555555555555555555555555555555555');
    s.sim.setNtpOffsetMs(30_000);
    const env = s.order('heal', { checks: ['patching'] }, { expires_at: iso(s.sim.now() + 3_600_000) });
    const h = await s.healing.handleOrder(env, await s.cycle());
    expect(h.drafts[0]).toMatchObject({ outcome: 'deferred' });
    expect(h.drafts[0]!.reason).toMatch(/clock not sane: clock is 30000 ms/);
    expect(requests(s)).toEqual([]);
    expect((await s.healing.collect(await s.cycle())).promoted).toEqual([]);
    s.sim.setNtpOffsetMs(2);
    expect((await s.healing.collect(await s.cycle())).promoted).toHaveLength(1);
    expect((await s.heal()).results[0]?.result.outcome).toBe('healed');
  });

  it('an unsynchronised clock defers too', async () => {
    s = setup();
    s.sim.setRunningRevision('6666666666666666666666666666666666666666');
    s.sim.setNtpSynchronised(false);
    const h = await s.healing.handleOrder(s.order('heal', { checks: ['patching'] }), await s.cycle());
    expect(h.drafts[0]).toMatchObject({ outcome: 'deferred' });
    expect(h.drafts[0]!.reason).toContain('not synchronised');
  });
});

describe('the healer checks window and clock itself (it does not trust the agent)', () => {
  function requestFor(t: Setup, actions: HealAction[], env = t.order('heal', { checks: ['patching'] })) {
    const orderId = (JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { order_id: string }).order_id;
    writeHealRequest(t.stateDir, { version: 1, request_id: randomUUID(), created_at: iso(t.sim.now()), envelope: env, plan: { order_id: orderId, actions } });
    return orderId;
  }

  it('a rebuild request written outside the window is deferred by the healer with no action, and the agent keeps it pending', async () => {
    s = setup({ now: OUT_OF_WINDOW });
    s.sim.setRunningRevision('7777777777777777777777777777777777777777');
    const orderId = requestFor(s, [{ kind: 'rebuild_switch', flakeRef: s.baseline.patching.flakeRef }]);
    s.sim.clearExecuted();
    const run = await s.heal();
    expect(run.results[0]?.result).toMatchObject({ outcome: 'deferred', order_id: orderId, action_taken: [] });
    expect(run.results[0]?.result.retry_envelope).not.toBeNull();
    expect(s.sim.actions()).toEqual([]);
    const collected = await s.healing.collect(await s.cycle());
    expect(collected.drafts[0]).toMatchObject({ outcome: 'deferred', order_id: orderId });
    expect(pending(s)).toEqual([`${orderId}.json`]);
  });

  it('a rebuild request with a skewed clock is deferred by the healer even inside the window', async () => {
    s = setup();
    s.sim.setRunningRevision('8888888888888888888888888888888888888888');
    s.sim.setNtpOffsetMs(-20_000);
    requestFor(s, [{ kind: 'rebuild_switch', flakeRef: s.baseline.patching.flakeRef }]);
    s.sim.clearExecuted();
    const run = await s.heal();
    expect(run.results[0]?.result.outcome).toBe('deferred');
    expect(run.results[0]?.result.reason).toContain('clock not sane');
    expect(s.sim.actions()).toEqual([]);
  });
});
