import { afterEach, describe, expect, it } from 'vitest';
import { ALL_CHECKS, CheckCadence, runChecks, systemFacts, type CheckResult } from '../../src/checks/index.js';
import { dueCheckEvidence } from '../../src/agent/due-check-evidence.js';
import { makeDraft } from '../../src/agent/index.js';
import { openStateDb, stateLayout } from '../../src/state/index.js';
import type { SimulatedHost } from '../../testing/index.js';
import { applianceContext, testConfig } from '../helpers/appliance.js';
import { tempDir } from '../helpers/tmp.js';

const hosts: SimulatedHost[] = [];
const cleanups: (() => void)[] = [];
afterEach(() => {
  hosts.splice(0).forEach((h) => h.dispose());
  cleanups.splice(0).forEach((c) => c());
});

function setup(config = testConfig()) {
  const s = applianceContext({}, config);
  hosts.push(s.host);
  const cadence = new CheckCadence();
  /** One agent cycle's checks: the command lines it ran and its results by check. */
  const cycle = async () => {
    s.host.clearExecuted();
    const results = await runChecks(s.ctx, undefined, { cadence });
    return { commands: s.host.executed.map((e) => e.command).sort(), results: Object.fromEntries(results.map((r) => [r.check, r])) as Record<string, CheckResult> };
  };
  return { ...s, cadence, cycle };
}

const MINUTE = 60_000;

describe('CheckCadence: an idle cycle runs no command for facts that did not change', () => {
  it('the second cycle runs only systemctl; the reused results keep the time they were observed', async () => {
    const s = setup();
    const t0 = s.host.now();
    const first = await s.cycle();
    expect(first.commands.sort()).toEqual(['chronyc', 'cryptsetup', 'cryptsetup', 'lsblk', 'nft', 'nixos-version', 'systemctl']);
    expect(Object.values(first.results).every((r) => r.reusedFrom === undefined)).toBe(true);

    s.host.advance(MINUTE);
    const second = await s.cycle();
    expect(second.commands).toEqual(['nft', 'systemctl']);
    for (const name of ['patching', 'encryption', 'time']) {
      const r = second.results[name]!;
      expect(r.status).toBe('compliant');
      expect(r.reusedFrom).toBe(t0);
      expect(r.observed).toEqual(first.results[name]!.observed);
    }
    for (const name of ['services', 'backup', 'firewall']) expect(second.results[name]!.reusedFrom).toBeUndefined();
  });

  it('a switch re-runs patching and encryption at once; the new revision is seen', async () => {
    const s = setup();
    await s.cycle();
    s.host.advance(MINUTE);
    s.host.setRunningRevision('1111111111111111111111111111111111111111');
    const after = await s.cycle();
    expect(after.commands.sort()).toEqual(['cryptsetup', 'cryptsetup', 'lsblk', 'nft', 'nixos-version', 'systemctl']);
    expect(after.results.patching).toMatchObject({ status: 'drift', observed: { configurationRevision: '1111111111111111111111111111111111111111' } });
    expect(after.results.patching!.reusedFrom).toBeUndefined();
    expect(after.results.encryption!.reusedFrom).toBeUndefined();
  });

  it('each interval bounds the reuse: time after timeCheckInterval, patching and encryption after stableCheckInterval', async () => {
    const s = setup(testConfig({ timeCheckInterval: 300, stableCheckInterval: 900 }));
    await s.cycle();
    s.host.advance(299_000);
    expect((await s.cycle()).commands).toEqual(['nft', 'systemctl']);
    s.host.advance(1_000);
    expect((await s.cycle()).commands.sort()).toEqual(['chronyc', 'nft', 'systemctl']);
    s.host.advance(599_000);
    expect((await s.cycle()).commands).toEqual(['chronyc', 'nft', 'systemctl']);
    s.host.advance(1_000);
    expect((await s.cycle()).commands).toEqual(['cryptsetup', 'cryptsetup', 'lsblk', 'nft', 'nixos-version', 'systemctl']);
  });

  it('a clock stepped back by more than the interval re-runs the checks', async () => {
    const s = setup();
    await s.cycle();
    s.host.advance(-3_600_000);
    expect((await s.cycle()).commands.sort()).toEqual(['chronyc', 'cryptsetup', 'cryptsetup', 'lsblk', 'nft', 'nixos-version', 'systemctl']);
  });

  it('drift and errors are never reused: the next cycle checks again', async () => {
    const s = setup();
    s.host.setNtpOffsetMs(60_000);
    s.host.unencryptMount('/var/backup');
    const first = await s.cycle();
    expect(first.results.time!.status).toBe('drift');
    expect(first.results.encryption!.status).toBe('drift');
    s.host.advance(MINUTE);
    const second = await s.cycle();
    expect(second.commands).toContain('chronyc');
    expect(second.commands).toContain('lsblk');
    expect(second.results.time!.reusedFrom).toBeUndefined();
  });

  it('an error is never reused: the next cycle checks again', async () => {
    const s = setup();
    s.host.setFault('nixos-version', 'missing');
    expect((await s.cycle()).results.patching!.status).toBe('error');
    s.host.setFault('nixos-version', null);
    s.host.advance(MINUTE);
    const next = await s.cycle();
    expect(next.commands).toContain('nixos-version');
    expect(next.results.patching!.status).toBe('compliant');
  });

  it('0 means every cycle; runChecks without a cadence (the healer, `check`) always runs every command', async () => {
    const s = setup(testConfig({ timeCheckInterval: 0, stableCheckInterval: 0 }));
    await s.cycle();
    expect((await s.cycle()).commands.sort()).toEqual(['chronyc', 'cryptsetup', 'cryptsetup', 'lsblk', 'nft', 'nixos-version', 'systemctl']);

    const t = setup();
    await t.cycle();
    t.host.clearExecuted();
    await runChecks(t.ctx);
    expect(t.host.executed.map((e) => e.command).sort()).toEqual(['chronyc', 'cryptsetup', 'cryptsetup', 'lsblk', 'nft', 'nixos-version', 'systemctl']);
  });
});

describe('evidence of a reused result says when it was observed', () => {
  it('timestamp_start and pre_state.reusedFrom are the observation time; status records it as checked_at', async () => {
    const dir = tempDir();
    cleanups.push(dir.cleanup);
    const config = testConfig({ stateDir: dir.path, heartbeatInterval: 60 });
    const s = setup(config);
    const db = openStateDb(stateLayout(dir.path).db);
    cleanups.unshift(() => db.close());
    const t0 = s.host.now();
    const first = await s.cycle();
    dueCheckEvidence(db, config, ALL_CHECKS, Object.values(first.results), t0, s.host.now()).record();

    s.host.advance(2 * MINUTE);
    const second = Object.values((await s.cycle()).results);
    const now = s.host.now();
    const { specs, record } = dueCheckEvidence(db, config, ALL_CHECKS, second, now, now);
    record();
    const drafts = specs.map((spec) => makeDraft(config, systemFacts(second), spec));
    const enc = drafts.find((d) => d.check === 'encryption')!;
    expect(enc.timestamp_start).toBe(new Date(t0).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    expect(enc.pre_state).toMatchObject({ reusedFrom: enc.timestamp_start });
    const services = drafts.find((d) => d.check === 'services')!;
    expect(services.timestamp_start).toBe(new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    expect(services.pre_state).not.toHaveProperty('reusedFrom');
    const rows = db.prepare('SELECT check_name, checked_at FROM check_results').all() as { check_name: string; checked_at: number }[];
    expect(Object.fromEntries(rows.map((r) => [r.check_name, r.checked_at]))).toMatchObject({ encryption: t0, patching: t0, time: t0, services: now });
  });
});
