import { afterEach, describe, expect, it } from 'vitest';
import { ALL_CHECKS, CHECK_NAMES, getCheck, isDisruptiveUnit, runChecks, systemFacts, rulesetHash } from '../../src/checks/index.js';
import { healIsDisruptive } from '../../src/heal/index.js';
import { sampleRuleset, type SimulatedHost } from '../../testing/index.js';
import { applianceContext } from '../helpers/appliance.js';

const hosts: SimulatedHost[] = [];
function setup() {
  const s = applianceContext();
  hosts.push(s.host);
  return s;
}
afterEach(() => hosts.splice(0).forEach((h) => h.dispose()));

describe('runChecks', () => {
  it('runs all six checks in order; a fresh appliance is compliant everywhere', async () => {
    const s = setup();
    const results = await runChecks(s.ctx);
    expect(results.map((r) => r.check)).toEqual([...CHECK_NAMES]);
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('compliant'));
    expect(ALL_CHECKS.map((c) => c.name)).toEqual([...CHECK_NAMES]);
    expect(s.host.actions()).toEqual([]);
  });

  it('runs only the named checks', async () => {
    const s = setup();
    const results = await runChecks(s.ctx, ['time', 'backup']);
    expect(results.map((r) => r.check)).toEqual(['backup', 'time']);
    expect(s.host.commandLines()).toEqual(['chronyc -c tracking']);
  });

  it('gives each check its own deadline: a stalled command errors that check only', async () => {
    const s = setup();
    s.host.setFault('nft', 'stall');
    const results = await runChecks(s.ctx, undefined, { timeoutMs: 300 });
    const byName = Object.fromEntries(results.map((r) => [r.check, r]));
    expect(byName.firewall).toMatchObject({ status: 'error', summary: 'firewall check did not finish within 0.3 s' });
    expect(results.filter((r) => r.status !== 'compliant').map((r) => r.check)).toEqual(['firewall']);
  });

  it('turns a crash inside a check into an error result instead of throwing', async () => {
    const s = setup();
    s.host.stat = () => Promise.reject(new Error('EIO on /var/backup'));
    const results = await runChecks(s.ctx, ['backup', 'services']);
    expect(results.map((r) => [r.check, r.status])).toEqual([
      ['services', 'compliant'],
      ['backup', 'error'],
    ]);
    expect(results[1]!.summary).toBe('backup check failed unexpectedly: EIO on /var/backup');
  });

  it('reports drift and error side by side', async () => {
    const s = setup();
    s.host.stopService('sshd.service');
    s.host.setFault('lsblk', 'garbage');
    s.host.setNtpOffsetMs(60_000);
    const status = Object.fromEntries((await runChecks(s.ctx)).map((r) => [r.check, r.status]));
    expect(status).toEqual({ patching: 'compliant', services: 'drift', backup: 'compliant', firewall: 'compliant', encryption: 'error', time: 'drift' });
  });
});

describe('systemFacts', () => {
  it('takes the evidence fields from the check results', async () => {
    const s = setup();
    s.host.setNtpOffsetMs(-12.345);
    const results = await runChecks(s.ctx);
    const g = s.host.currentGeneration();
    expect(systemFacts(results)).toEqual({
      ruleset_hash: rulesetHash(sampleRuleset()),
      nixos_revision: g.nixosVersion,
      derivation_digest: results.find((r) => r.check === 'patching')!.observed.derivationDigest,
      ntp_offset_ms: -12.345,
    });
    expect(systemFacts(results).derivation_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('is null where a check could not observe, and keeps observed values of a drifted check', async () => {
    const s = setup();
    s.host.setFault('nixos-version', 'missing');
    s.host.setFault('chronyc', 'garbage');
    s.host.changeFirewall('table inet nixos-fw {\n}\n');
    const facts = systemFacts(await runChecks(s.ctx));
    expect(facts).toEqual({ ruleset_hash: rulesetHash('table inet nixos-fw {\n}\n'), nixos_revision: null, derivation_digest: null, ntp_offset_ms: null });
    expect(systemFacts([])).toEqual({ ruleset_hash: null, nixos_revision: null, derivation_digest: null, ntp_offset_ms: null });
  });
});

describe('disruptive heals', () => {
  it('isDisruptiveUnit: journald (any form), dbus, network daemons, the firewall reload', () => {
    for (const u of [
      'systemd-journald.service',
      'systemd-journald@audit.service',
      'systemd-journald.socket',
      'dbus.service',
      'dbus-broker.service',
      'systemd-networkd.service',
      'NetworkManager.service',
      'nftables.service',
    ]) {
      expect(isDisruptiveUnit(u), u).toBe(true);
    }
    for (const u of ['sshd.service', 'postgresql.service', 'chronyd.service', 'restic-backups-appliance.service', 'journald-exporter.service']) {
      expect(isDisruptiveUnit(u), u).toBe(false);
    }
  });

  it('healIsDisruptive: rebuild-based heals always, service restarts only for disruptive units', () => {
    const base = { summary: '', observed: {}, expected: {}, durationMs: 0 } as const;
    const { baseline } = setup();
    expect(healIsDisruptive({ ...base, check: 'patching', status: 'drift' }, baseline)).toBe(true);
    expect(healIsDisruptive({ ...base, check: 'firewall', status: 'drift' }, baseline)).toBe(true);
    expect(healIsDisruptive({ ...base, check: 'backup', status: 'drift' }, baseline)).toBe(false);
    expect(healIsDisruptive({ ...base, check: 'services', status: 'drift', driftUnits: ['sshd.service'] }, baseline)).toBe(false);
    expect(healIsDisruptive({ ...base, check: 'services', status: 'drift', driftUnits: ['sshd.service', 'systemd-journald.service'] }, baseline)).toBe(true);
    expect(getCheck('nope')).toBeUndefined();
  });
});
