import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getCheck, type CheckResult } from '../../src/checks/index.js';
import { RealHost } from '../../src/host/index.js';
import { simulatedAppliance, baselineFor } from '../../testing/index.js';
import { testConfig } from '../helpers/appliance.js';
import { tempDir } from '../helpers/tmp.js';
import { render, run } from '../nix/nix.js';

/**
 * The root disk snapshot (modules/lib/snapshots.nix) run for real with bash, lsblk, cryptsetup
 * and jq, and the encryption check reading what it wrote, as the agent does under PrivateDevices.
 */
const dir = tempDir('ca-disks-');
afterAll(() => dir.cleanup());
const rendered = render();

/** Runs the snapshot script with RUNTIME_DIRECTORY set; PATH may put stand-ins first. */
function snapshot(name: string, opts: { path?: string } = {}): string {
  const runtime = join(dir.path, name);
  mkdirSync(runtime, { recursive: true });
  execFileSync('bash', ['-c', rendered.diskScript], {
    env: { PATH: opts.path ? `${opts.path}:${process.env.PATH}` : process.env.PATH, RUNTIME_DIRECTORY: runtime, LC_ALL: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return join(runtime, 'disks.json');
}

function stub(name: string, tool: string, script: string): string {
  const bin = join(dir.path, name);
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, tool), `#!/bin/sh\n${script}\n`);
  chmodSync(join(bin, tool), 0o755);
  return bin;
}

async function encryption(file: string, requiredMounts: string[]): Promise<CheckResult> {
  const sim = simulatedAppliance();
  try {
    const baseline = { ...baselineFor(sim), encryption: { requiredMounts } };
    // lsblk and cryptsetup off the PATH: the check must read the snapshot, not run them.
    const host = new RealHost({ path: '/nonexistent' });
    return await getCheck('encryption')!.run({ host, baseline, config: testConfig({ diskSnapshotFile: file, pollInterval: 60 }) });
  } finally {
    sim.dispose();
  }
}

/** An appliance's `lsblk --json -o NAME,TYPE,FSTYPE,MOUNTPOINTS`: / on LUKS2, /srv/plain not. */
const LSBLK = JSON.stringify({
  blockdevices: [
    {
      name: 'vda',
      type: 'disk',
      fstype: null,
      mountpoints: [null],
      children: [
        { name: 'vda1', type: 'part', fstype: 'vfat', mountpoints: ['/boot'] },
        { name: 'vda2', type: 'part', fstype: 'crypto_LUKS', mountpoints: [null], children: [{ name: 'cryptroot', type: 'crypt', fstype: 'ext4', mountpoints: ['/'] }] },
      ],
    },
    { name: 'vdb', type: 'disk', fstype: 'ext4', mountpoints: ['/srv/plain'] },
  ],
});

/** `cryptsetup status cryptroot` on a LUKS2 mapping, as cryptsetup 2.6 prints it. */
const STATUS = [
  '/dev/mapper/cryptroot is active and is in use.',
  '  type:    LUKS2',
  '  cipher:  aes-xts-plain64',
  '  keysize: 512 bits',
  '  key location: keyring',
  '  device:  /dev/vda2',
  '  sector size:  512',
  '  offset:  32768 sectors',
  '  size:    20932608 sectors',
  '  mode:    read/write',
].join('\n');

describe('disk snapshot unit and the encryption check', () => {
  it('lsblk, cryptsetup and jq are installed', () => {
    expect(run('lsblk', ['--version'])).toMatch(/util-linux/);
    expect(run('cryptsetup', ['--version'])).toMatch(/^cryptsetup 2\./);
    expect(run('jq', ['--version'])).toMatch(/^jq-1\./);
  });

  it('on this machine: the snapshot holds the real lsblk tree, and the check decides from it alone', async () => {
    const file = snapshot('real');
    const written = JSON.parse(readFileSync(file, 'utf8')) as { version: number; lsblk: unknown; cryptsetup: Record<string, unknown> };
    expect(written.version).toBe(1);
    expect(written.lsblk).toEqual(JSON.parse(run('lsblk', ['--json', '-o', 'NAME,TYPE,FSTYPE,MOUNTPOINTS'])));
    const r = await encryption(file, ['/']);
    expect(r.status).not.toBe('error');
    expect(r.observed.source).toBe(file);
    // No crypt device here: / is either on a plain device or on none lsblk lists (a container).
    expect(r.summary).toMatch(/^\/ is (on \S+ \(.+\), not encrypted|not on any mounted file system)$/);
  });

  it('runs the real cryptsetup for every crypt device; its failure is recorded and lsblk decides', async () => {
    const file = snapshot('crypt-real-cryptsetup', { path: stub('lsblk-stub', 'lsblk', `cat <<'JSON'\n${LSBLK}\nJSON`) });
    const written = JSON.parse(readFileSync(file, 'utf8')) as { cryptsetup: Record<string, { exitCode: number; output: string }> };
    expect(Object.keys(written.cryptsetup)).toEqual(['cryptroot']);
    expect(written.cryptsetup.cryptroot!.exitCode).not.toBe(0);
    const r = await encryption(file, ['/', '/var/lib/clinic']);
    expect(r.status).toBe('compliant');
    expect(r.summary).toBe('all 2 required mounts are on LUKS devices (/ on cryptroot, /var/lib/clinic on cryptroot)');
    expect((r.observed.cryptsetup as Record<string, string>).cryptroot).toMatch(/^unavailable: cryptsetup status cryptroot exited \d+ \(/);
  });

  it("records cryptsetup's LUKS version and cipher as root sees them, and drifts on a plain mount", async () => {
    const bin = stub('lsblk-stub', 'lsblk', `cat <<'JSON'\n${LSBLK}\nJSON`);
    stub('lsblk-stub', 'cryptsetup', `test "$*" = "--disable-locks status cryptroot" || exit 4\ncat <<'OUT'\n${STATUS}\nOUT`);
    const file = snapshot('crypt-luks2', { path: bin });
    const ok = await encryption(file, ['/']);
    expect(ok.status).toBe('compliant');
    expect(ok.observed.cryptsetup).toEqual({ cryptroot: { type: 'LUKS2', cipher: 'aes-xts-plain64', keysize: '512 bits', mode: 'read/write' } });
    expect(await encryption(file, ['/', '/srv/plain'])).toMatchObject({ status: 'drift', summary: '/srv/plain is on vdb (ext4), not encrypted' });
  });

  it('refuses a stale, missing or foreign snapshot with an error naming the file', async () => {
    const file = snapshot('stale');
    const old = (Date.now() - 11 * 60_000) / 1000;
    utimesSync(file, old, old);
    expect((await encryption(file, ['/'])).summary).toMatch(new RegExp(`^disk snapshot ${file} is 66\\d s old \\(limit 600 s\\): the snapshot unit is not running$`));
    const missing = join(dir.path, 'none', 'disks.json');
    expect(await encryption(missing, ['/'])).toMatchObject({ status: 'error', summary: expect.stringMatching(new RegExp(`^disk snapshot ${missing}: `)) });
    const foreign = join(dir.path, 'foreign.json');
    writeFileSync(foreign, JSON.stringify({ blockdevices: [] }));
    expect(await encryption(foreign, ['/'])).toMatchObject({ status: 'error', summary: `disk snapshot ${foreign} is not a lsblk/cryptsetup snapshot ("{"blockdevices":[]}")` });
  });

  it('the rendered config.json points the agent at the file the snapshot unit writes', () => {
    expect(rendered.config.diskSnapshotFile).toBe(rendered.diskSnapshotFile);
    const runtimeDir = /\nRuntimeDirectory=(\S+)\n/.exec(rendered.diskUnit)![1];
    expect(rendered.diskSnapshotFile).toBe(`/run/${runtimeDir}/disks.json`);
  });
});
