import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { BlockDevice } from '../../src/checks/encryption.js';
import { simulatedAppliance, SAMPLE_FLAKE_REF, SAMPLE_REVISION, SAMPLE_PREVIOUS_REVISION, SAMPLE_NOW, type SimulatedHost } from '../../testing/index.js';

const hosts: SimulatedHost[] = [];
function appliance(...args: Parameters<typeof simulatedAppliance>): SimulatedHost {
  const h = simulatedAppliance(...args);
  hosts.push(h);
  return h;
}
afterEach(() => hosts.splice(0).forEach((h) => h.dispose()));

const T = { timeoutMs: 10_000 };
const REBUILD = { timeoutMs: 600_000 };

/** `nixos-version --json` as NixOS prints it (the fields read here). */
interface NixosVersionJson {
  configurationRevision?: string;
  nixosVersion: string;
}
const nixosVersion = async (h: SimulatedHost) => JSON.parse((await h.exec('nixos-version', ['--json'], T)).stdout) as NixosVersionJson;

const lsblkDevice = async (h: SimulatedHost, name: string) =>
  (JSON.parse((await h.exec('lsblk', ['--json', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINTS'], T)).stdout) as { blockdevices: BlockDevice[] }).blockdevices.find((d) => d.name === name);

describe('simulated systemctl', () => {
  it('is-active prints one state per unit and exits 0 only when one is active', async () => {
    const h = appliance();
    h.stopService('postgresql.service');
    h.failService('sshd.service');
    const r = await h.exec('systemctl', ['is-active', 'sshd.service', 'postgresql.service', 'nftables.service', 'nope.service'], T);
    expect(r).toMatchObject({ status: 'ok', exitCode: 0, stdout: 'failed\ninactive\nactive\ninactive\n' });
    const none = await h.exec('systemctl', ['is-active', 'postgresql.service'], T);
    expect(none).toMatchObject({ status: 'nonzero', exitCode: 3, stdout: 'inactive\n' });
  });

  it('show -p ActiveState,SubState --value prints the two values', async () => {
    const h = appliance();
    expect((await h.exec('systemctl', ['show', '-p', 'ActiveState,SubState', '--value', 'sshd.service'], T)).stdout).toBe('active\nrunning\n');
    expect((await h.exec('systemctl', ['show', '-p', 'ActiveState,SubState', '--value', 'nftables.service'], T)).stdout).toBe('active\nexited\n');
    expect((await h.exec('systemctl', ['show', '-p', 'ActiveState,SubState', 'restic-backups-appliance.service'], T)).stdout).toBe('ActiveState=inactive\nSubState=dead\n');
  });

  it("restart brings a stopped unit back; a broken unit fails with systemd's message and ends failed", async () => {
    const h = appliance();
    h.stopService('postgresql.service');
    expect(await h.exec('systemctl', ['restart', 'postgresql.service'], T)).toMatchObject({ status: 'ok', exitCode: 0 });
    expect(h.unitState('postgresql.service')).toEqual({ active: 'active', sub: 'running' });
    h.setUnitBroken('postgresql.service');
    const r = await h.exec('systemctl', ['restart', 'postgresql.service'], T);
    expect(r).toMatchObject({ status: 'nonzero', exitCode: 1 });
    expect(r.stderr).toContain('Job for postgresql.service failed because the control process exited with error code.');
    expect(h.unitState('postgresql.service')).toEqual({ active: 'failed', sub: 'failed' });
    const unknown = await h.exec('systemctl', ['restart', 'nope.service'], T);
    expect(unknown).toMatchObject({ exitCode: 5, stderr: 'Failed to restart nope.service: Unit nope.service not found.\n' });
  });

  it('start of the backup unit runs it and touches the stamp at the simulated time; a broken backup leaves it', async () => {
    const h = appliance({ backupAgeHours: 40 });
    const stamp = h.resolvePath(h.profile.backupStampFile)!;
    const before = statSync(stamp).mtimeMs;
    h.advance(1000);
    const r = await h.exec('systemctl', ['start', h.profile.backupUnit], { timeoutMs: 600_000 });
    expect(r.status).toBe('ok');
    // The stamp is written when the oneshot finishes: its duration later on the simulated clock.
    expect(statSync(stamp).mtimeMs).toBe(h.now());
    expect(statSync(stamp).mtimeMs).toBe(SAMPLE_NOW + 1000 + r.durationMs);
    expect(before).toBe(SAMPLE_NOW - 40 * 3_600_000);
    expect(h.unitState(h.profile.backupUnit)).toEqual({ active: 'inactive', sub: 'dead' });
    h.setBackupAge(40);
    const aged = statSync(stamp).mtimeMs;
    h.setUnitBroken(h.profile.backupUnit);
    expect((await h.exec('systemctl', ['start', h.profile.backupUnit], { timeoutMs: 600_000 })).exitCode).toBe(1);
    expect(statSync(stamp).mtimeMs).toBe(aged);
  });
});

describe('simulated nft, nixos-version, readlink, lsblk, cryptsetup, chronyc, timedatectl', () => {
  it('nft list ruleset returns the live ruleset, counters moving between listings', async () => {
    const h = appliance();
    const a = (await h.exec('nft', ['list', 'ruleset'], T)).stdout;
    const b = (await h.exec('nft', ['list', 'ruleset'], T)).stdout;
    expect(a).toMatch(/^table inet nixos-fw \{\n/);
    expect(a).not.toBe(b);
    h.changeFirewall('table inet filter {\n}\n');
    expect((await h.exec('nft', ['list', 'ruleset'], T)).stdout).toBe('table inet filter {\n}\n');
  });

  it('nixos-version --json and readlink describe the running generation', async () => {
    const h = appliance();
    const g = h.currentGeneration();
    const v = await nixosVersion(h);
    expect(v).toEqual({ configurationRevision: SAMPLE_REVISION, nixosVersion: g.nixosVersion, nixpkgsRevision: g.nixpkgsRevision });
    expect(v.nixosVersion).toMatch(/^25\.05\.\d{8}\.[0-9a-f]{7}$/);
    expect((await h.exec('readlink', ['-f', '/run/current-system'], T)).stdout).toBe(`${g.storePath}\n`);
    expect(g.storePath).toMatch(/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-nixos-system-clinic-001-appliance-25\.05\.\d{8}\.[0-9a-f]{7}$/);
    expect((await h.exec('readlink', ['/nix/var/nix/profiles/system'], T)).stdout).toBe(`system-${g.number}-link\n`);
    expect(await h.exec('readlink', ['/etc/hostname'], T)).toMatchObject({ exitCode: 1, stdout: '' });
  });

  it("Host.readlink and realpath answer as the readlink commands do, and follow a switch; other paths are the tree's", async () => {
    const h = appliance();
    for (const path of ['/run/current-system', '/nix/var/nix/profiles/system', '/nix/var/nix/profiles/system-1-link']) {
      expect(await h.readlink(path)).toBe((await h.exec('readlink', [path], T)).stdout.trim());
      expect(await h.realpath(path)).toBe((await h.exec('readlink', ['-f', path], T)).stdout.trim());
    }
    const g = h.setRunningRevision(null);
    expect(await h.realpath('/run/current-system')).toBe(g.storePath);
    expect(await h.readlink('/nix/var/nix/profiles/system')).toBe(`system-${g.number}-link`);
    h.writeFile('/etc/hostname', 'clinic-001-appliance\n');
    expect(await h.readlink('/etc/hostname')).toBeNull();
    expect(await h.realpath('/etc/hostname')).toBe('/etc/hostname');
    expect(await h.realpath('/etc/absent')).toBeNull();
    // Absolute targets are the appliance's paths, through its system links too.
    symlinkSync('/run/current-system/sw', join(h.root, 'etc', 'static-sw'));
    expect(await h.readlink('/etc/static-sw')).toBe('/run/current-system/sw');
    expect(await h.realpath('/etc/static-sw/bin/nixos-version')).toBe(`${g.storePath}/sw/bin/nixos-version`);
    symlinkSync('../etc/hostname', join(h.root, 'etc', 'relative'));
    expect(await h.realpath('/etc/relative')).toBe('/etc/hostname');
    symlinkSync('/etc/loop-b', join(h.root, 'etc', 'loop-a'));
    symlinkSync('/etc/loop-a', join(h.root, 'etc', 'loop-b'));
    expect(await h.realpath('/etc/loop-a')).toBeNull();
    expect(await h.realpath('/etc/static-sw/bin/absent')).toBeNull();
  });

  it('lsblk shows the crypt layer under encrypted mounts and none once a mount is unencrypted', async () => {
    const h = appliance();
    expect((await lsblkDevice(h, 'vdb'))?.children?.[0]).toEqual({
      name: 'vdb1',
      type: 'part',
      fstype: 'crypto_LUKS',
      mountpoints: [null],
      children: [{ name: 'cryptbackup', type: 'crypt', fstype: 'ext4', mountpoints: ['/var/backup'] }],
    });
    h.unencryptMount('/var/backup');
    expect((await lsblkDevice(h, 'vdb'))?.children?.[0]).toEqual({ name: 'vdb1', type: 'part', fstype: 'ext4', mountpoints: ['/var/backup'] });
  });

  it('cryptsetup status reports an active LUKS2 mapping, and an unknown one as inactive (exit 4)', async () => {
    const h = appliance();
    const r = await h.exec('cryptsetup', ['status', 'cryptroot'], T);
    expect(r.stdout).toMatch(/^\/dev\/mapper\/cryptroot is active and is in use\.\n {2}type: {4}LUKS2\n {2}cipher: {2}aes-xts-plain64\n/);
    expect(await h.exec('cryptsetup', ['status', 'nothing'], T)).toMatchObject({ exitCode: 4, stdout: '/dev/mapper/nothing is inactive.\n' });
  });

  it('chronyc -c tracking prints 14 CSV fields with the correction in seconds (positive = clock slow)', async () => {
    const h = appliance();
    h.setNtpOffsetMs(-250);
    const fields = (await h.exec('chronyc', ['-c', 'tracking'], T)).stdout.trim().split(',');
    expect(fields).toHaveLength(14);
    expect(fields.slice(0, 3)).toEqual(['C0A80A01', '192.168.10.1', '3']);
    expect(fields[4]).toBe('0.250000000');
    expect(fields[13]).toBe('Normal');
    h.setNtpSynchronised(false);
    const unsynced = (await h.exec('chronyc', ['-c', 'tracking'], T)).stdout.trim().split(',');
    expect(unsynced[0]).toBe('00000000');
    expect(unsynced[13]).toBe('Not synchronised');
  });

  it('timedatectl show prints key=value lines with NTPSynchronized', async () => {
    const h = appliance();
    const out = (await h.exec('timedatectl', ['show'], T)).stdout;
    expect(out).toContain('NTPSynchronized=yes\n');
    expect(out).toContain('TimeUSec=Mon 2026-11-23 12:00:00 UTC\n');
    h.setNtpSynchronised(false);
    expect((await h.exec('timedatectl', ['show'], T)).stdout).toContain('NTPSynchronized=no\n');
  });
});

describe('simulated faults, clock, files and the command log', () => {
  it('missing: status missing, nothing printed', async () => {
    const h = appliance();
    h.setFault('chronyc', 'missing');
    expect(await h.exec('chronyc', ['-c', 'tracking'], T)).toMatchObject({ status: 'missing', exitCode: null, stdout: '' });
    expect(await h.exec('/run/current-system/sw/bin/not-a-tool', [], T)).toMatchObject({ status: 'missing' });
  });

  it('nonzero: the error the real tool prints', async () => {
    const h = appliance();
    h.setFault('nft', 'nonzero');
    expect(await h.exec('nft', ['list', 'ruleset'], T)).toMatchObject({
      status: 'nonzero',
      exitCode: 1,
      stderr: 'netlink: Error: cache initialization failed: Operation not permitted\n',
    });
  });

  it('hang: the exec timeout fires and the simulated clock moves by it', async () => {
    const h = appliance();
    h.setFault('systemctl', 'hang');
    const before = h.now();
    expect(await h.exec('systemctl', ['is-active', 'sshd.service'], { timeoutMs: 7000 })).toMatchObject({ status: 'timeout', exitCode: null, durationMs: 7000 });
    expect(h.now() - before).toBe(7000);
  });

  it('garbage: exit 0 with unparseable output', async () => {
    const h = appliance();
    h.setFault('lsblk', 'garbage');
    const r = await h.exec('lsblk', ['--json', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINTS'], T);
    expect(r.status).toBe('ok');
    expect((): unknown => JSON.parse(r.stdout)).toThrow();
  });

  it('stall: the exec promise never settles', async () => {
    const h = appliance();
    h.setFault('timedatectl', 'stall');
    const winner = await Promise.race([h.exec('timedatectl', ['show'], T).then(() => 'settled'), new Promise((r) => setTimeout(() => r('still pending'), 100))]);
    expect(winner).toBe('still pending');
    h.setFault('timedatectl', null);
    expect((await h.exec('timedatectl', ['show'], T)).status).toBe('ok');
  });

  it('logs every command with its arguments; actions() lists only state changes', async () => {
    const h = appliance();
    await h.exec('systemctl', ['is-active', 'sshd.service'], T);
    await h.exec('nft', ['list', 'ruleset'], T);
    expect(h.actions()).toEqual([]);
    await h.exec('systemctl', ['restart', 'sshd.service'], T);
    expect(h.commandLines()).toEqual(['systemctl is-active sshd.service', 'nft list ruleset', 'systemctl restart sshd.service']);
    expect(h.executed[2]).toMatchObject({ command: 'systemctl', args: ['restart', 'sshd.service'], at: expect.any(Number), status: 'ok', exitCode: 0 });
    expect(h.actions()).toEqual(['systemctl restart sshd.service']);
  });

  it('has a manual clock that commands advance by their simulated duration', async () => {
    const h = appliance();
    expect(h.now()).toBe(SAMPLE_NOW);
    h.advance(60_000);
    expect(h.now()).toBe(SAMPLE_NOW + 60_000);
    h.setNow(SAMPLE_NOW);
    const r = await h.exec('systemctl', ['restart', 'sshd.service'], T);
    expect(h.now()).toBe(SAMPLE_NOW + r.durationMs);
  });

  it('keeps files in a real directory, with settable mtimes, and never outside its root', async () => {
    const h = appliance();
    h.writeFile('/etc/compliance-agent/site', 'clinic-001\n', { mtimeMs: SAMPLE_NOW - 5000 });
    expect(readFileSync(`${h.root}/etc/compliance-agent/site`, 'utf8')).toBe('clinic-001\n');
    expect(await h.readFile('/etc/compliance-agent/site')).toEqual({ ok: true, text: 'clinic-001\n' });
    expect((await h.stat('/etc/compliance-agent/site'))!.mtimeMs).toBe(SAMPLE_NOW - 5000);
    h.setMtime('/etc/compliance-agent/site', SAMPLE_NOW);
    expect((await h.stat('/etc/compliance-agent/site'))!.mtimeMs).toBe(SAMPLE_NOW);
    expect(await h.readFile('/../../../etc/compliance-agent/site')).toEqual({ ok: true, text: 'clinic-001\n' });
    expect(h.resolvePath('/../../etc/passwd')).toBe(`${h.root}/etc/passwd`);
    expect(await h.readFile('/etc/passwd')).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(await h.readFile('relative/path')).toMatchObject({ ok: false, code: 'ENOENT' });
    h.writeFile('/var/log/big', 'x'.repeat(2048));
    expect(await h.readFile('/var/log/big', 1024)).toMatchObject({ ok: false, code: 'TOO_LARGE' });
  });
});

describe('simulated nixos-rebuild and generations', () => {
  const rebuild = (h: SimulatedHost, timeoutMs = REBUILD.timeoutMs) => h.exec('nixos-rebuild', ['switch', '--flake', SAMPLE_FLAKE_REF], { timeoutMs });
  const list = async (h: SimulatedHost) =>
    JSON.parse((await h.exec('nixos-rebuild', ['list-generations', '--json'], T)).stdout) as { generation: number; current: boolean; configurationRevision: string }[];

  it('starts at generation 2 of the managed flake, generation 1 before it', async () => {
    const h = appliance();
    const gens = await list(h);
    expect(gens.map((g) => [g.generation, g.current, g.configurationRevision])).toEqual([
      [2, true, SAMPLE_REVISION],
      [1, false, SAMPLE_PREVIOUS_REVISION],
    ]);
  });

  it('success: builds a new generation, switches to it and restores drifted units and firewall', async () => {
    const h = appliance();
    h.setRunningRevision('0000000000000000000000000000000000000000');
    h.stopService('sshd.service');
    h.changeFirewall('');
    const r = await rebuild(h);
    expect(r).toMatchObject({ status: 'ok', exitCode: 0 });
    expect(r.stderr).toContain('activating the configuration...');
    const g = h.currentGeneration();
    expect(g.number).toBe(4);
    expect((await nixosVersion(h)).configurationRevision).toBe(SAMPLE_REVISION);
    expect((await h.exec('readlink', ['-f', '/run/current-system'], T)).stdout).toBe(`${g.storePath}\n`);
    expect(h.unitState('sshd.service')!.active).toBe('active');
    expect(h.ruleset).toContain('table inet nixos-fw');
    expect((await list(h))[0]).toMatchObject({ generation: 4, current: true });
  });

  it('fail: exits 1 with the builder error and switches nothing', async () => {
    const h = appliance();
    h.scriptRebuild('fail');
    const before = h.currentGeneration();
    const r = await rebuild(h);
    expect(r).toMatchObject({ status: 'nonzero', exitCode: 1 });
    expect(r.stderr).toMatch(
      /^building the system configuration\.\.\.\nerror: builder for '\/nix\/store\/[0-9a-df-np-sv-z]{32}-nixos-system-clinic-001-appliance-25\.05\.drv' failed with exit code 1;/,
    );
    expect(h.currentGeneration()).toEqual(before);
    expect(await list(h)).toHaveLength(2);
    // The script is used once: the next rebuild succeeds.
    expect((await rebuild(h)).status).toBe('ok');
  });

  it("hang: never exits, so the caller's timeout fires (clock moved by it) and nothing switches", async () => {
    const h = appliance();
    h.scriptRebuild('hang');
    const t0 = h.now();
    const r = await rebuild(h, 300_000);
    expect(r).toMatchObject({ status: 'timeout', exitCode: null, durationMs: 300_000 });
    expect(h.now() - t0).toBe(300_000);
    expect(h.currentGeneration().number).toBe(2);
  });

  it('a timeout shorter than the build kills it before the switch', async () => {
    const h = appliance({ rebuildMs: 90_000 });
    expect((await rebuild(h, 60_000)).status).toBe('timeout');
    expect(h.currentGeneration().number).toBe(2);
  });

  it('unhealthy: exits 0 and switches, but a unit ends failed and stays failed on restart', async () => {
    const h = appliance();
    h.scriptRebuild({ mode: 'unhealthy', failUnit: 'postgresql.service' });
    const r = await rebuild(h);
    expect(r).toMatchObject({ status: 'ok', exitCode: 0 });
    expect(h.currentGeneration().number).toBe(3);
    expect((await h.exec('systemctl', ['is-active', 'postgresql.service'], T)).stdout).toBe('failed\n');
    expect((await h.exec('systemctl', ['restart', 'postgresql.service'], T)).exitCode).toBe(1);
  });

  it('activation_fail and activation_hang: the profile switched, then activation exits 4 or never returns', async () => {
    const h = appliance();
    h.scriptRebuild('activation_fail', 'activation_hang');
    const failed = await rebuild(h);
    expect(failed).toMatchObject({ status: 'nonzero', exitCode: 4 });
    expect(failed.stderr).toContain('warning: error(s) occurred while switching to the new configuration');
    expect(h.currentGeneration().number).toBe(3);
    const before = h.now();
    expect((await rebuild(h, 120_000)).status).toBe('timeout');
    expect(h.currentGeneration().number).toBe(4);
    expect(h.now() - before).toBeGreaterThanOrEqual(120_000);
  });

  it('rollback: switches back to the previous generation, observable everywhere, and heals the broken unit', async () => {
    const h = appliance();
    const good = h.currentGeneration();
    h.scriptRebuild('unhealthy');
    await rebuild(h);
    expect(h.currentGeneration().number).toBe(3);
    const r = await h.exec('nixos-rebuild', ['switch', '--rollback'], REBUILD);
    expect(r).toMatchObject({ status: 'ok', exitCode: 0 });
    expect(r.stderr).toContain('switching profile from version 3 to 2');
    expect(h.currentGeneration()).toEqual(good);
    expect((await h.exec('readlink', ['-f', '/run/current-system'], T)).stdout).toBe(`${good.storePath}\n`);
    expect((await h.exec('readlink', ['/nix/var/nix/profiles/system'], T)).stdout).toBe('system-2-link\n');
    expect((await list(h)).map((g) => [g.generation, g.current])).toEqual([
      [3, false],
      [2, true],
      [1, false],
    ]);
    expect((await h.exec('systemctl', ['is-active', 'sshd.service', 'postgresql.service'], T)).stdout).toBe('active\nactive\n');
    expect(h.actions()).toEqual([`nixos-rebuild switch --flake ${SAMPLE_FLAKE_REF}`, 'nixos-rebuild switch --rollback']);
  });

  it('rollback with no older generation, a scripted failure and a hang', async () => {
    const h = appliance();
    expect((await h.exec('nixos-rebuild', ['switch', '--rollback'], REBUILD)).status).toBe('ok');
    expect(await h.exec('nixos-rebuild', ['switch', '--rollback'], REBUILD)).toMatchObject({ exitCode: 1, stderr: 'error: no generation older than the current (1) exists\n' });
    await rebuild(h);
    h.scriptRollback('fail', 'hang');
    expect((await h.exec('nixos-rebuild', ['switch', '--rollback'], REBUILD)).exitCode).toBe(1);
    expect((await h.exec('nixos-rebuild', ['switch', '--rollback'], { timeoutMs: 120_000 })).status).toBe('timeout');
    expect(h.currentGeneration().number).toBe(3);
  });

  it('an unknown flake or unknown arguments fail as nix and nixos-rebuild do', async () => {
    const h = appliance();
    const r = await h.exec('nixos-rebuild', ['switch', '--flake', 'github:evil/flake#x'], REBUILD);
    expect(r).toMatchObject({ exitCode: 1 });
    expect(r.stderr).toContain("error: cannot find flake 'github:evil/flake#x' in the flake registries");
    expect((await h.exec('nixos-rebuild', ['switch', '--flake', SAMPLE_FLAKE_REF, '--option', 'x', 'y'], REBUILD)).exitCode).toBe(2);
    expect(h.currentGeneration().number).toBe(2);
  });
});

describe('simulated nix build, binary caches, nix-env and switch-to-configuration', () => {
  const PROFILE = '/nix/var/nix/profiles/system';
  const toplevel = (ref: string) => `${ref.slice(0, ref.indexOf('#'))}#nixosConfigurations.appliance.config.system.build.toplevel`;
  const build = (h: SimulatedHost, ref = SAMPLE_FLAKE_REF, timeoutMs = REBUILD.timeoutMs) =>
    h.exec('nix', ['--extra-experimental-features', 'nix-command flakes', 'build', '--no-link', '--print-out-paths', '--option', 'accept-flake-config', 'false', toplevel(ref)], {
      timeoutMs,
    });
  const realise = (h: SimulatedHost, path: string, url: string, key: string) =>
    h.exec('nix-store', ['--realise', path, '--option', 'substituters', url, '--option', 'trusted-public-keys', key, '--option', 'require-sigs', 'true'], REBUILD);
  const KEY = 'cache-1:dEb8hfQcNzUzx/AaXxHTKbaF28USBABLet6QQv/WZL8=';
  const OTHER = 'other-1:PwwvUPDfkrOqmOh5Y2tD7Ra6ro8uu7cIO9gtGSLO+hg=';

  it('nix build prints the toplevel store path and switches nothing; the closure reports its revision in sw/bin/nixos-version', async () => {
    const h = appliance();
    const running = h.runningSystem();
    const r = await build(h);
    expect(r.status).toBe('ok');
    const path = r.stdout.trim();
    expect(path).toMatch(/^\/nix\/store\/[0-9a-df-np-sv-z]{32}-nixos-system-clinic-001-appliance-25\.05\.\d{8}\.[0-9a-f]{7}$/);
    expect(h.inStore(path)).toBe(true);
    expect(h.runningSystem()).toEqual(running);
    expect(h.actions()).toEqual([]);
    const script = await h.readFile(`${path}/sw/bin/nixos-version`);
    expect(script.ok && script.text).toContain(`--json)\n    cat <<'EOF'\n{"configurationRevision":"${SAMPLE_REVISION}",`);
    expect(await h.stat(`${path}/bin/switch-to-configuration`)).not.toBeNull();
  });

  it('nix build fails and hangs as scripted, and fails for an attribute that is not a system toplevel', async () => {
    const h = appliance();
    h.scriptRebuild('fail', 'hang');
    const failed = await build(h);
    expect(failed).toMatchObject({ status: 'nonzero', exitCode: 1 });
    expect(failed.stderr).toMatch(/^error: builder for '\/nix\/store\/.*\.drv' failed with exit code 1;/);
    expect((await build(h, SAMPLE_FLAKE_REF, 300_000)).status).toBe('timeout');
    const attr = await h.exec('nix', ['build', '--no-link', '--print-out-paths', `${SAMPLE_FLAKE_REF.split('#')[0]}#packages.x86_64-linux.default`], REBUILD);
    expect(attr).toMatchObject({ exitCode: 1, stderr: "error: flake does not provide attribute 'packages.x86_64-linux.default'\n" });
  });

  it('nix-env --set moves the profile only; switch-to-configuration of that path activates it', async () => {
    const h = appliance();
    const before = h.runningSystem();
    h.stopService('sshd.service');
    const path = (await build(h)).stdout.trim();
    expect((await h.exec('nix-env', ['-p', PROFILE, '--set', path], T)).status).toBe('ok');
    expect((await h.exec('readlink', [PROFILE], T)).stdout).toBe('system-3-link\n');
    expect((await h.exec('readlink', ['-f', '/run/current-system'], T)).stdout).toBe(`${before.storePath}\n`);
    expect(h.activations()).toEqual([]);
    const r = await h.exec(`${path}/bin/switch-to-configuration`, ['switch'], REBUILD);
    expect(r).toMatchObject({ status: 'ok', exitCode: 0 });
    expect(h.runningSystem().storePath).toBe(path);
    expect(h.unitState('sshd.service')!.active).toBe('active');
    expect(h.activations()).toEqual([`${path}/bin/switch-to-configuration switch`]);
    expect(await h.exec('nix-env', ['-p', PROFILE, '--set', '/nix/store/0000000000000000000000000000000a-nope'], T)).toMatchObject({
      exitCode: 1,
      stderr: "error: path '/nix/store/0000000000000000000000000000000a-nope' is not valid\n",
    });
    expect(await h.exec('/nix/store/0000000000000000000000000000000a-nope/bin/switch-to-configuration', ['switch'], T)).toMatchObject({ status: 'missing', exitCode: null });
  });

  it('nix-env --switch-generation N goes to exactly N; the generation link activates it; failures as scripted', async () => {
    const h = appliance();
    await h.exec('nixos-rebuild', ['switch', '--flake', SAMPLE_FLAKE_REF], REBUILD);
    const r = await h.exec('nix-env', ['-p', PROFILE, '--switch-generation', '1'], T);
    expect(r).toMatchObject({ status: 'ok', stderr: 'switching profile from version 3 to 1\n' });
    expect((await h.exec(`${PROFILE}-1-link/bin/switch-to-configuration`, ['switch'], REBUILD)).status).toBe('ok');
    expect(h.runningSystem().configurationRevision).toBe(SAMPLE_PREVIOUS_REVISION);
    expect(await h.exec('nix-env', ['-p', PROFILE, '--switch-generation', '9'], T)).toMatchObject({ exitCode: 1, stderr: 'error: generation 9 does not exist\n' });
    h.scriptRollback('fail');
    expect((await h.exec('nix-env', ['-p', PROFILE, '--switch-generation', '2'], T)).exitCode).toBe(1);
    expect(h.currentGeneration().number).toBe(1);
  });

  it('nix-store --realise substitutes from a listed cache only with a signature by a trusted key, as nix does', async () => {
    const h = appliance();
    const closure = h.closureFor({ ...h.currentGeneration(), configurationRevision: 'f'.repeat(40) });
    h.publishClosure('https://cache.example', closure, OTHER);
    const untrusted = await realise(h, closure.storePath, 'https://cache.example', KEY);
    expect(untrusted).toMatchObject({ status: 'nonzero', exitCode: 1 });
    expect(untrusted.stderr).toBe(
      `warning: substituter 'https://cache.example' does not have a valid signature for path '${closure.storePath}'\nerror: path '${closure.storePath}' is required, but there is no substituter that can build it\n`,
    );
    expect(h.inStore(closure.storePath)).toBe(false);
    expect((await realise(h, closure.storePath, 'https://elsewhere.example', OTHER)).exitCode).toBe(1);
    const ok = await realise(h, closure.storePath, 'https://cache.example', `${KEY} ${OTHER}`);
    expect(ok).toMatchObject({ status: 'ok', stdout: `${closure.storePath}\n` });
    expect(h.inStore(closure.storePath)).toBe(true);
    expect(h.actions()).toEqual([]);
  });
});
