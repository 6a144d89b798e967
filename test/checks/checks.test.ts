import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { getCheck, type CheckName, type CheckResult } from '../../src/checks/index.js';
import { healIsDisruptive } from '../../src/heal/index.js';
import type { HostFault, SimulatedHost } from '../../testing/index.js';
import { applianceContext, testConfig } from '../helpers/appliance.js';

const hosts: SimulatedHost[] = [];
function setup(...args: Parameters<typeof applianceContext>) {
  const s = applianceContext(...args);
  hosts.push(s.host);
  return s;
}
afterEach(() => hosts.splice(0).forEach((h) => h.dispose()));

async function run(name: CheckName, s: ReturnType<typeof setup>): Promise<CheckResult> {
  return getCheck(name)!.run(s.ctx);
}

const FAULTS: HostFault[] = ['missing', 'nonzero', 'hang', 'garbage'];

/** For each check and command it needs, what each fault's error summary says. */
const ERROR_CASES: { check: CheckName; command: string; summaries: Record<Exclude<HostFault, 'stall'>, RegExp> }[] = [
  {
    check: 'patching',
    command: 'nixos-version',
    summaries: {
      missing: /^nixos-version is not installed/,
      nonzero: /^nixos-version --json exited 1: jq: error/,
      hang: /^nixos-version --json did not finish within 10 s$/,
      garbage: /^nixos-version --json printed no version JSON/,
    },
  },
  {
    check: 'services',
    command: 'systemctl',
    summaries: {
      missing: /^systemctl is not installed/,
      nonzero: /^systemctl is-active sshd\.service .* exited 1: Failed to connect to bus/,
      hang: /^systemctl is-active .* did not finish within 10 s$/,
      garbage: /^systemctl is-active printed \d+ line\(s\) for 5 unit\(s\), not unit states/,
    },
  },
  {
    check: 'firewall',
    command: 'nft',
    summaries: {
      missing: /^nft is not installed/,
      nonzero: /^nft list ruleset: permission denied \(listing the ruleset needs CAP_NET_ADMIN; set rulesetSnapshotFile\)$/,
      hang: /^nft list ruleset did not finish within 10 s$/,
      garbage: /^nft list ruleset is not a ruleset: expected "table <family> <name> \{"/,
    },
  },
  {
    check: 'encryption',
    command: 'lsblk',
    summaries: {
      missing: /^lsblk is not installed/,
      nonzero: /^lsblk --json -o NAME,TYPE,FSTYPE,MOUNTPOINTS exited 32: lsblk: failed to access sysfs/,
      hang: /^lsblk --json .* did not finish within 10 s$/,
      garbage: /^lsblk --json printed no block device list/,
    },
  },
  {
    check: 'time',
    command: 'chronyc',
    summaries: {
      // chronyc missing means a timesyncd host: the check falls back (tested below), so this is the both-missing case.
      missing: /^neither chronyc nor timedatectl is installed: the clock cannot be checked$/,
      nonzero: /^chronyc -c tracking exited 1: 506 Cannot talk to daemon$/,
      hang: /^chronyc -c tracking did not finish within 10 s$/,
      garbage: /^chronyc -c tracking printed no tracking record/,
    },
  },
];

describe('every check on a compliant appliance', () => {
  for (const name of ['patching', 'services', 'backup', 'firewall', 'encryption', 'time'] as const) {
    it(`${name} is compliant and takes no action`, async () => {
      const s = setup();
      const r = await run(name, s);
      expect(r).toMatchObject({ check: name, status: 'compliant' });
      expect(r.summary.length).toBeGreaterThan(10);
      expect(s.host.actions()).toEqual([]);
    });
  }
});

describe('a failing command makes the check an error with a specific summary, never a throw', () => {
  for (const c of ERROR_CASES) {
    for (const fault of FAULTS) {
      it(`${c.check}: ${c.command} ${fault}`, async () => {
        const s = setup();
        s.host.setFault(c.command, fault);
        if (c.check === 'time' && fault === 'missing') s.host.setFault('timedatectl', 'missing');
        const r = await run(c.check, s);
        expect(r.status).toBe('error');
        expect(r.summary).toMatch(c.summaries[fault as Exclude<HostFault, 'stall'>]);
        expect(s.host.actions()).toEqual([]);
      });
    }
  }
});

describe('patching', () => {
  it('reports generation, NixOS version and the digest of the store path (checked with sha256sum)', async () => {
    const s = setup();
    const r = await run('patching', s);
    const g = s.host.currentGeneration();
    const digest = execFileSync('sha256sum', { input: g.storePath }).toString().split(' ')[0];
    expect(r.observed).toEqual({
      configurationRevision: s.baseline.patching.configurationRevision,
      nixosVersion: g.nixosVersion,
      nixpkgsRevision: g.nixpkgsRevision,
      generation: 2,
      storePath: g.storePath,
      derivationDigest: `sha256:${digest}`,
    });
    expect(r.expected).toEqual({ configurationRevision: s.baseline.patching.configurationRevision, flakeRef: s.baseline.patching.flakeRef });
  });

  it('drifts when a different revision runs, when the tree was dirty, and after a rollback to the old one', async () => {
    const s = setup();
    s.host.setRunningRevision('1111111111111111111111111111111111111111');
    const other = await run('patching', s);
    expect(other.status).toBe('drift');
    expect(other.summary).toMatch(/^running revision 1111111111111111111111111111111111111111, baseline expects [0-9a-f]{40} \(generation 3, NixOS 25\.05\./);
    s.host.setRunningRevision(null);
    const dirty = await run('patching', s);
    expect(dirty.status).toBe('drift');
    expect(dirty.summary).toMatch(/^running system has no configurationRevision/);
    expect(dirty.observed.configurationRevision).toBeNull();

    const fresh = setup();
    await fresh.host.exec('nixos-rebuild', ['switch', '--rollback'], { timeoutMs: 600_000 });
    const rolled = await run('patching', fresh);
    expect(rolled.status).toBe('drift');
    expect(rolled.observed.generation).toBe(1);
  });

  it('keeps working without the generation number when the profile link cannot be read', async () => {
    const s = setup();
    const real = s.host.readlink.bind(s.host);
    s.host.readlink = (path) => (path === '/nix/var/nix/profiles/system' ? Promise.resolve(null) : real(path));
    const r = await run('patching', s);
    expect(r.status).toBe('compliant');
    expect(r.observed.generation).toBeNull();
  });

  it('reads /run/current-system and the system profile as links: nixos-version is its only command', async () => {
    const s = setup();
    s.host.clearExecuted();
    const r = await run('patching', s);
    expect(r.status).toBe('compliant');
    expect(r.observed.storePath).toBe(s.host.runningSystem().storePath);
    expect(s.host.executed.map((e) => [e.command, ...e.args].join(' '))).toEqual(['nixos-version --json']);
  });

  it('a running system that does not resolve, or resolves outside the store, is an error', async () => {
    const s = setup();
    s.host.realpath = () => Promise.resolve(null);
    expect(await run('patching', s)).toMatchObject({ status: 'error', summary: '/run/current-system does not resolve: no running NixOS system' });
    s.host.realpath = () => Promise.resolve('/tmp/not-a-system');
    expect(await run('patching', s)).toMatchObject({ status: 'error', summary: '/run/current-system resolves to /tmp/not-a-system, not a store path' });
  });
});

describe('services', () => {
  it('drift lists the units that are not active, with their states, as restart targets', async () => {
    const s = setup();
    s.host.stopService('postgresql.service');
    s.host.failService('sshd.service');
    const r = await run('services', s);
    expect(r.status).toBe('drift');
    expect(r.driftUnits).toEqual(['sshd.service', 'postgresql.service']);
    expect(r.summary).toBe('2 of 5 required units not active: sshd.service (failed), postgresql.service (inactive)');
    expect(r.observed.units).toMatchObject({ 'sshd.service': 'failed', 'postgresql.service': 'inactive', 'chronyd.service': 'active' });
    expect(healIsDisruptive(r, s.baseline)).toBe(false);
    expect(s.host.actions()).toEqual([]);
  });

  it('a stopped journald makes the heal disruptive', async () => {
    const s = setup();
    s.host.stopService('systemd-journald.service');
    const r = await run('services', s);
    expect(r.driftUnits).toEqual(['systemd-journald.service']);
    expect(healIsDisruptive(r, s.baseline)).toBe(true);
  });

  it("a required unit the host does not have reads inactive (systemd's answer) and drifts", async () => {
    const s = setup();
    const ctx = { ...s.ctx, baseline: { ...s.baseline, services: { required: ['auditd.service'] } } };
    const r = await getCheck('services')!.run(ctx);
    expect(r).toMatchObject({ status: 'drift', driftUnits: ['auditd.service'] });
  });

  it('is compliant with no required units, without running anything', async () => {
    const s = setup();
    const r = await getCheck('services')!.run({ ...s.ctx, baseline: { ...s.baseline, services: { required: [] } } });
    expect(r.status).toBe('compliant');
    expect(s.host.executed).toEqual([]);
  });
});

describe('backup', () => {
  it('drifts when the last backup is older than maxAgeHours, or never happened', async () => {
    const s = setup();
    s.host.setBackupAge(30);
    const old = await run('backup', s);
    expect(old).toMatchObject({ status: 'drift', summary: 'last successful backup 30 h ago, older than the 26 h limit' });
    expect(old.observed).toMatchObject({ stampFile: '/var/backup/last-success.stamp', ageHours: 30 });
    s.host.removeBackupStamp();
    expect(await run('backup', s)).toMatchObject({ status: 'drift', summary: 'no backup stamp at /var/backup/last-success.stamp: no successful backup recorded' });
  });

  it('is compliant just inside the limit and after the backup unit ran', async () => {
    const s = setup();
    s.host.setBackupAge(25.9);
    expect((await run('backup', s)).status).toBe('compliant');
    s.host.setBackupAge(48);
    await s.host.exec('systemctl', ['start', s.baseline.backup.unit], { timeoutMs: 600_000 });
    expect(await run('backup', s)).toMatchObject({ status: 'compliant', observed: { ageHours: 0 } });
  });

  it('is an error when the stamp is in the future beyond the clock skew limit', async () => {
    const s = setup();
    s.host.setBackupAge(-2);
    expect(await run('backup', s)).toMatchObject({ status: 'error', summary: 'backup stamp /var/backup/last-success.stamp is 2 h in the future: the clock or the stamp is wrong' });
  });
});

describe('firewall', () => {
  it('stays compliant while counters and set expiry move between listings', async () => {
    const s = setup();
    const a = await run('firewall', s);
    const b = await run('firewall', s);
    expect(a.status).toBe('compliant');
    expect(b.observed.rulesetHash).toBe(a.observed.rulesetHash);
    expect(a.observed.rulesetHash).toBe(s.baseline.firewall.rulesetHash);
    expect(a.observed.tables).toEqual(['inet compliance-agent-egress', 'inet nixos-fw']);
  });

  it('drifts when a port is opened by hand, and when the ruleset is flushed', async () => {
    const s = setup();
    s.host.changeFirewall((t) => t.replace('tcp dport { 22, 443 } accept', 'tcp dport { 22, 443, 5432 } accept'));
    const opened = await run('firewall', s);
    expect(opened.status).toBe('drift');
    expect(opened.summary).toMatch(/^ruleset sha256:[0-9a-f]{12}… differs from the baseline sha256:[0-9a-f]{12}… \(tables: inet compliance-agent-egress, inet nixos-fw\)$/);
    s.host.changeFirewall('');
    expect(await run('firewall', s)).toMatchObject({ status: 'drift', summary: 'the firewall ruleset is empty: nothing is filtered' });
  });

  it('reads the root-written snapshot instead of running nft, and refuses a stale one', async () => {
    const s = setup({}, testConfig({ rulesetSnapshotFile: '/run/compliance-agent/ruleset.nft', pollInterval: 60 }));
    s.host.writeFile('/run/compliance-agent/ruleset.nft', s.host.ruleset, { mtimeMs: s.host.now() - 30_000 });
    s.host.setFault('nft', 'missing');
    const fresh = await run('firewall', s);
    expect(fresh.status).toBe('compliant');
    expect(fresh.observed.rulesetHash).toBe(s.baseline.firewall.rulesetHash);
    expect(s.host.commandLines().filter((c) => c.startsWith('nft'))).toEqual([]);
    s.host.writeFile('/run/compliance-agent/ruleset.nft', s.host.ruleset.replace('tcp dport { 22, 443 } accept', 'tcp dport { 22, 443, 5432 } accept'), { mtimeMs: s.host.now() });
    expect((await run('firewall', s)).status).toBe('drift');
    s.host.setMtime('/run/compliance-agent/ruleset.nft', s.host.now() - 11 * 60_000);
    expect(await run('firewall', s)).toMatchObject({
      status: 'error',
      summary: 'ruleset snapshot /run/compliance-agent/ruleset.nft is 660 s old (limit 600 s): the snapshot unit is not running',
    });
    s.host.removeFile('/run/compliance-agent/ruleset.nft');
    expect((await run('firewall', s)).summary).toMatch(/^ruleset snapshot \/run\/compliance-agent\/ruleset\.nft: /);
  });

  it('is healed by a rebuild (the generation reloads its ruleset)', async () => {
    const s = setup();
    s.host.changeFirewall('');
    await s.host.exec('nixos-rebuild', ['switch', '--flake', s.baseline.patching.flakeRef], { timeoutMs: 600_000 });
    expect((await run('firewall', s)).status).toBe('compliant');
  });
});

describe('encryption', () => {
  it('drifts when a required mount sits on a plain partition, naming the device', async () => {
    const s = setup();
    s.host.unencryptMount('/var/backup');
    const r = await run('encryption', s);
    expect(r).toMatchObject({ status: 'drift', summary: '/var/backup is on vdb1 (ext4), not encrypted' });
    expect(s.host.actions()).toEqual([]);
  });

  it('drifts on plain dm-crypt without LUKS', async () => {
    const s = setup();
    s.host.volumes[2]!.crypt = { name: 'cryptbackup', type: 'PLAIN' };
    expect(await run('encryption', s)).toMatchObject({ status: 'drift', summary: '/var/backup is on cryptbackup, plain dm-crypt without LUKS' });
  });

  it('resolves a required path that is not a mount point to the mount holding it', async () => {
    const s = setup();
    const r = await getCheck('encryption')!.run({ ...s.ctx, baseline: { ...s.baseline, encryption: { requiredMounts: ['/var/lib/postgresql', '/var/backup/daily'] } } });
    expect(r.status).toBe('compliant');
    expect(r.observed.mounts).toMatchObject({
      '/var/lib/postgresql': { mountedAt: '/', crypt: 'cryptroot', luks: true },
      '/var/backup/daily': { mountedAt: '/var/backup', crypt: 'cryptbackup' },
    });
  });

  it('records the LUKS version and cipher when cryptsetup answers', async () => {
    const s = setup();
    const r = await run('encryption', s);
    expect(r.observed.cryptsetup).toMatchObject({ cryptroot: { type: 'LUKS2', cipher: 'aes-xts-plain64' }, cryptbackup: { type: 'LUKS2' } });
  });

  for (const fault of FAULTS) {
    it(`decides from lsblk when cryptsetup fails (${fault}; it needs root the agent lacks), noting why`, async () => {
      const s = setup();
      s.host.setFault('cryptsetup', fault);
      const r = await run('encryption', s);
      expect(r.status).toBe('compliant');
      expect((r.observed.cryptsetup as Record<string, string>).cryptroot).toMatch(/^unavailable: /);
    });
  }

  it('has a report-only heal: never auto-enabled', () => {
    expect(getCheck('encryption')!.heal.kind).toBe('report_only');
  });
});

describe('time', () => {
  it('reports the offset as clock minus NTP time and drifts beyond ntpMaxSkewMs either way', async () => {
    const s = setup();
    s.host.setNtpOffsetMs(5000);
    expect(await run('time', s)).toMatchObject({ status: 'compliant', observed: { offsetMs: 5000, synchronised: true, source: 'chronyc' } });
    s.host.setNtpOffsetMs(7250.5);
    expect(await run('time', s)).toMatchObject({ status: 'drift', summary: 'clock is 7250.5 ms ahead of NTP time (limit 5000 ms, server 192.168.10.1)' });
    s.host.setNtpOffsetMs(-90_000);
    expect(await run('time', s)).toMatchObject({
      status: 'drift',
      summary: 'clock is 90000 ms behind NTP time (limit 5000 ms, server 192.168.10.1)',
      observed: { offsetMs: -90_000 },
    });
  });

  it('uses the configured limit', async () => {
    const s = setup({}, testConfig({ ntpMaxSkewMs: 100 }));
    s.host.setNtpOffsetMs(150);
    expect((await run('time', s)).status).toBe('drift');
  });

  it('drifts when chrony has no source', async () => {
    const s = setup();
    s.host.setNtpSynchronised(false);
    expect(await run('time', s)).toMatchObject({ status: 'drift', summary: 'chrony is not synchronised to any NTP source', observed: { offsetMs: null } });
  });

  it('falls back to timedatectl when chronyc is not installed', async () => {
    const s = setup();
    s.host.setFault('chronyc', 'missing');
    expect(await run('time', s)).toMatchObject({ status: 'compliant', observed: { source: 'timedatectl', synchronised: true, offsetMs: null } });
    s.host.setNtpSynchronised(false);
    expect(await run('time', s)).toMatchObject({ status: 'drift', summary: 'the system clock is not NTP-synchronised' });
  });

  for (const fault of ['nonzero', 'hang', 'garbage'] as const) {
    it(`is an error when the timedatectl fallback fails (${fault})`, async () => {
      const s = setup();
      s.host.setFault('chronyc', 'missing');
      s.host.setFault('timedatectl', fault);
      const r = await run('time', s);
      expect(r.status).toBe('error');
      expect(r.summary).toMatch(/^timedatectl show (exited 1|did not finish|printed no NTPSynchronized)/);
    });
  }
});

describe('declarations', () => {
  const expectations: Record<CheckName, { disruptive: boolean; heal: string }> = {
    patching: { disruptive: true, heal: 'rebuild' },
    services: { disruptive: false, heal: 'restart_units' },
    backup: { disruptive: false, heal: 'start_backup' },
    firewall: { disruptive: true, heal: 'rebuild' },
    encryption: { disruptive: false, heal: 'report_only' },
    time: { disruptive: false, heal: 'report_only' },
  };
  for (const [name, e] of Object.entries(expectations)) {
    it(`${name} declares HIPAA and SOC 2 controls, disruptive=${e.disruptive}, heal ${e.heal}`, () => {
      const c = getCheck(name)!;
      const s = setup();
      expect(healIsDisruptive({ check: c.name, status: 'drift', summary: '', observed: {}, expected: {}, durationMs: 0 }, s.baseline)).toBe(e.disruptive);
      expect(c.heal.kind).toBe(e.heal);
      expect(c.controls.some((x) => /^HIPAA 164\.3(08|10|12)\([a-e]\)(\(\d+\))?(\((i|ii|iii|iv|v)\))?(\([A-F]\))?$/.test(x))).toBe(true);
      expect(c.controls.some((x) => /^SOC 2 (CC[1-9]\.\d|A1\.[1-3])$/.test(x))).toBe(true);
      expect(c.controls.every((x) => /^(HIPAA 164\.3\d\d\(|SOC 2 )/.test(x))).toBe(true);
    });
  }
  it('encryption maps to HIPAA 164.312(a)(2)(iv) and SOC 2 CC6.1/CC6.7; time to 164.312(b)', () => {
    expect(getCheck('encryption')!.controls).toEqual(expect.arrayContaining(['HIPAA 164.312(a)(2)(iv)', 'SOC 2 CC6.1', 'SOC 2 CC6.7']));
    expect(getCheck('time')!.controls).toContain('HIPAA 164.312(b)');
  });
});
