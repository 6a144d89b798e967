import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { clockSanity, decideTiming, parseWindow, Spool, type HealAction } from '../../src/heal/index.js';
import { healLayout } from '../../src/state/index.js';
import type { Envelope } from '../../src/crypto/index.js';
import type { CheckResult } from '../../src/checks/index.js';
import { SAMPLE_FLAKE_REF } from '../../testing/index.js';
import { iso, makeKey } from '../orders/fixtures.js';
import { activateSteps, assertValidDrafts, IN_WINDOW, OUT_OF_WINDOW, setup, type Setup } from './fixtures.js';

let s: Setup | undefined;
afterEach(() => {
  s?.cleanup();
  s = undefined;
});

const requests = (t: Setup) => readdirSync(healLayout(t.healDir).requests);
const orderIdOf = (env: Envelope) => (JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { order_id: string }).order_id;

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

describe('decideTiming', () => {
  const sane = { sane: true as const, offsetMs: 1 };
  const window = parseWindow('02:00-04:00');
  const rebuild: HealAction = { kind: 'rebuild_switch', flakeRef: SAMPLE_FLAKE_REF };
  const sshd: HealAction = { kind: 'restart_unit', unit: 'sshd.service' };
  const journald: HealAction = { kind: 'restart_unit', unit: 'systemd-journald.service' };

  it('acts on non-disruptive actions at any time, even with a bad clock', () => {
    expect(
      decideTiming([sshd, { kind: 'start_backup', unit: 'b.service' }], {
        window,
        allowDisruptiveOutsideWindow: false,
        clock: { sane: false, offsetMs: 1e6, reason: 'x' },
        now: OUT_OF_WINDOW,
      }),
    ).toEqual({ act: true });
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
    expect(decideTiming([rebuild], { window, allowDisruptiveOutsideWindow: true, clock: bad, now: IN_WINDOW })).toMatchObject({
      act: false,
      reason: expect.stringContaining('clock not sane'),
    });
  });
});

/** The agent takes the order, root answers: the one bundle the agent then makes from root's result. */
async function throughRoot(t: Setup, env: Envelope) {
  const handled = await t.handleOrder(env, await t.cycle());
  expect(handled.accepted).toBe(true);
  expect(handled.drafts).toEqual([]);
  t.sim.clearExecuted();
  await t.heal();
  const collected = await t.collect();
  assertValidDrafts(collected.drafts);
  expect(collected.drafts).toHaveLength(1);
  return collected.drafts[0]!;
}

/** A later healer run (the timer's) and what the agent then reports. */
async function later(t: Setup) {
  await t.heal();
  return (await t.collect()).drafts;
}

describe('deferral: root holds the order in its own state and acts when the window opens', () => {
  it('outside the window: one deferred bundle; quiet while waiting; applied once the window opens, with no request from the agent', async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 12, 0, 0), config: { maintenanceWindow: '12:30-13:30' } });
    s.sim.setRunningRevision('1111111111111111111111111111111111111111');
    const deferred = await throughRoot(s, s.order('heal', { checks: ['patching'] }, { execute_by: iso(Date.UTC(2026, 10, 23, 13, 0, 0)) }));
    expect(deferred).toMatchObject({ outcome: 'deferred', check: 'patching', action_taken: [] });
    expect(deferred.reason).toContain('outside the maintenance window 12:30-13:30 UTC; next opens 2026-11-23T12:30:00.000Z');
    expect(deferred.reason).toContain('held by the healer until 2026-11-23T13:00:00Z at the latest');
    expect(requests(s)).toEqual([]);

    s.sim.advance(10 * 60_000);
    expect(await later(s)).toEqual([]);
    expect(s.sim.actions()).toEqual([]);

    // Past expires_at (12:15): root recorded the order before then, so execute_by is what bounds it.
    s.sim.setNow(Date.UTC(2026, 10, 23, 12, 31, 0));
    const done = await later(s);
    expect(done.map((d) => [d.outcome, d.order_id])).toEqual([['healed', deferred.order_id]]);
    expect(s.sim.actions()).toEqual(activateSteps(s.sim.currentGeneration().storePath));
  });

  it("an order signed with execute_by is applied in the next night's window, long after expires_at", async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 14, 0, 0) });
    s.sim.setRunningRevision('1212121212121212121212121212121212121212');
    const env = s.order('heal', { checks: ['patching'] }, { execute_by: iso(Date.UTC(2026, 10, 24, 14, 0, 0)) });
    const deferred = await throughRoot(s, env);
    expect(deferred.outcome).toBe('deferred');
    s.sim.setNow(Date.UTC(2026, 10, 23, 23, 0, 0));
    expect(await later(s)).toEqual([]);
    s.sim.setNow(Date.UTC(2026, 10, 24, 2, 0, 30));
    const done = await later(s);
    expect(done.map((d) => [d.outcome, d.order_id])).toEqual([['healed', deferred.order_id]]);
    expect(s.sim.actions()).toEqual(activateSteps(s.sim.currentGeneration().storePath));
    expect(await later(s)).toEqual([]);
  });

  it('two healer runs at once (the timer and a manual run) apply a held order once', async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 1, 50, 0) });
    s.sim.setRunningRevision('1313131313131313131313131313131313131313');
    await throughRoot(s, s.order('heal', { checks: ['patching'] }, { execute_by: iso(Date.UTC(2026, 10, 23, 6, 0, 0)) }));
    s.sim.setNow(Date.UTC(2026, 10, 23, 2, 1, 0));
    await Promise.all([s.heal(), s.heal()]);
    expect(s.sim.actions()).toEqual(activateSteps(s.sim.currentGeneration().storePath));
    expect((await s.collect()).drafts.map((d) => d.outcome)).toEqual(['healed']);
  });

  it('a window crossing midnight (23:50-00:20): deferred at 23:40, applied at 00:05 the next day', async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 23, 40, 0), config: { maintenanceWindow: '23:50-00:20' } });
    s.sim.setRunningRevision('2222222222222222222222222222222222222222');
    const deferred = await throughRoot(s, s.order('heal', { checks: ['patching'] }, { execute_by: iso(Date.UTC(2026, 10, 24, 12, 0, 0)) }));
    expect(deferred.reason).toContain('next opens 2026-11-23T23:50:00.000Z');
    s.sim.setNow(Date.UTC(2026, 10, 24, 0, 5, 0));
    expect((await later(s)).map((d) => d.outcome)).toEqual(['healed']);
  });

  it('a held order whose execute_by passes before the window opens is dropped with evidence, never applied', async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 1, 50, 0) });
    s.sim.setRunningRevision('3333333333333333333333333333333333333333');
    s.sim.setNtpOffsetMs(30_000);
    const deferred = await throughRoot(s, s.order('heal', { checks: ['patching'] }, { execute_by: iso(Date.UTC(2026, 10, 23, 3, 0, 0)) }));
    expect(deferred.reason).toContain('clock not sane');
    s.sim.setNow(Date.UTC(2026, 10, 23, 3, 5, 0));
    s.sim.setNtpOffsetMs(1);
    const dropped = await later(s);
    expect(dropped).toHaveLength(1);
    expect(dropped[0]).toMatchObject({ outcome: 'failed', order_id: deferred.order_id });
    expect(dropped[0]!.reason).toMatch(/not applied: the window did not open with a sane clock before 2026-11-23T03:00:00Z/);
    expect(s.sim.actions()).toEqual([]);
    expect(await later(s)).toEqual([]);
  });

  it('without execute_by, an order whose window opens after its expiry fails at once instead of waiting', async () => {
    s = setup({ now: OUT_OF_WINDOW });
    s.sim.setRunningRevision('3434343434343434343434343434343434343434');
    const failed = await throughRoot(s, s.order('heal', { checks: ['patching'] }));
    expect(failed.outcome).toBe('failed');
    expect(failed.reason).toMatch(/the latest this order may run \(execute_by, or expires_at\): not applied$/);
    expect(await later(s)).toEqual([]);
  });

  it('a held order whose signing key was removed meanwhile is dropped, never applied', async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 1, 50, 0) });
    s.sim.setRunningRevision('3535353535353535353535353535353535353535');
    const deferred = await throughRoot(s, s.order('heal', { checks: ['patching'] }, { execute_by: iso(Date.UTC(2026, 10, 24, 1, 0, 0)) }));
    s.sim.setNow(Date.UTC(2026, 10, 23, 2, 5, 0));
    await s.heal({ trustedKeys: [makeKey('msp-2027').pub] });
    const dropped = (await s.collect()).drafts;
    expect(dropped.map((d) => [d.outcome, d.order_id])).toEqual([['failed', deferred.order_id]]);
    expect(dropped[0]!.reason).toMatch(/^held order no longer valid, not applied: unknown_key/);
    expect(s.sim.actions()).toEqual([]);
  });

  it('execute_by beyond maxDeferral, or before expires_at, is refused by the agent and by root', async () => {
    s = setup({ now: OUT_OF_WINDOW, config: { maxDeferral: 86_400 } });
    const tooLate = s.order('heal', { checks: ['patching'] }, { execute_by: iso(OUT_OF_WINDOW + 2 * 86_400_000) });
    const h = await s.handleOrder(tooLate, await s.cycle());
    expect(h.accepted).toBe(false);
    expect(h.drafts[0]!.reason).toMatch(/execute_by is 172800 s after issued_at, over maxDeferral 86400 s/);
    const early = s.order('heal', { checks: ['patching'] }, { execute_by: iso(OUT_OF_WINDOW + 60_000) });
    expect((await s.handleOrder(early, await s.cycle())).drafts[0]!.reason).toMatch(/execute_by must not be before expires_at/);
    new Spool(s.healDir).write({
      version: 1,
      request_id: randomUUID(),
      created_at: iso(s.sim.now()),
      envelope: tooLate,
      plan: { order_id: orderIdOf(tooLate), actions: [{ kind: 'rebuild_switch', flakeRef: s.baseline.patching.flakeRef }] },
    });
    const run = await s.heal();
    expect(run.results[0]?.result.reason).toMatch(/^ttl_too_long: execute_by/);
  });

  it('journald restart counts as disruptive: held outside the window, while an sshd restart goes ahead', async () => {
    s = setup({ now: OUT_OF_WINDOW });
    s.sim.stopService('systemd-journald.service');
    const j = await throughRoot(s, s.order('heal', { checks: ['services'] }, { execute_by: iso(OUT_OF_WINDOW + 86_400_000) }));
    expect(j).toMatchObject({ outcome: 'deferred' });
    expect(j.reason).toContain('systemctl restart -- systemd-journald.service');
    expect(s.sim.actions()).toEqual([]);

    const t = setup({ now: OUT_OF_WINDOW });
    try {
      t.sim.stopService('sshd.service');
      expect((await throughRoot(t, t.order('heal', { checks: ['services'] }))).outcome).toBe('healed');
      expect(t.sim.actions()).toEqual(['systemctl restart -- sshd.service']);
    } finally {
      t.cleanup();
    }
  });

  it('allowDisruptiveOutsideWindow lets a rebuild run outside the window', async () => {
    s = setup({ now: OUT_OF_WINDOW, config: { allowDisruptiveOutsideWindow: true } });
    s.sim.setRunningRevision('4444444444444444444444444444444444444444');
    expect((await throughRoot(s, s.order('heal', { checks: ['patching'] }))).outcome).toBe('healed');
  });
});

describe('a skewed clock defers', () => {
  it('inside the window with the clock 30 s off: held; applied once NTP is back in sync', async () => {
    s = setup();
    s.sim.setRunningRevision('5555555555555555555555555555555555555555');
    s.sim.setNtpOffsetMs(30_000);
    const h = await throughRoot(s, s.order('heal', { checks: ['patching'] }));
    expect(h).toMatchObject({ outcome: 'deferred' });
    expect(h.reason).toMatch(/clock not sane: clock is 30000 ms/);
    expect(await later(s)).toEqual([]);
    s.sim.setNtpOffsetMs(2);
    expect((await later(s)).map((d) => d.outcome)).toEqual(['healed']);
  });

  it('an unsynchronised clock defers too', async () => {
    s = setup();
    s.sim.setRunningRevision('6666666666666666666666666666666666666666');
    s.sim.setNtpSynchronised(false);
    const h = await throughRoot(s, s.order('heal', { checks: ['patching'] }));
    expect(h).toMatchObject({ outcome: 'deferred' });
    expect(h.reason).toContain('not synchronised');
  });
});
