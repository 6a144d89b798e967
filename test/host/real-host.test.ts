import { afterAll, describe, expect, it, vi } from 'vitest';
import { readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync, mkdirSync, utimesSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RealHost, REBUILD_ENV, type ExecOptions } from '../../src/host/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('real-host-');
afterAll(() => tmp.cleanup());

/** Command lines of every live process: proves a timeout left nothing behind. */
function liveCommandLines(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim());
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

// Every guarantee holds on both paths: execa, and node:child_process alone for a query run every cycle.
describe.each([
  { path: 'execa', everyCycle: false },
  { path: 'every cycle (node:child_process)', everyCycle: true },
])('RealHost.exec, $path', ({ everyCycle }) => {
  const real = new RealHost({ killGraceMs: 300, maxOutputBytes: 64 * 1024 });
  const host = { exec: (command: string, args: readonly string[], o: ExecOptions) => real.exec(command, args, { ...o, everyCycle }) };

  it('returns stdout and stderr exactly as printed, with exit code 0', async () => {
    const r = await host.exec('sh', ['-c', 'printf "one\\ntwo\\n"; printf "warn\\n" >&2'], { timeoutMs: 10_000 });
    expect(r).toMatchObject({ status: 'ok', exitCode: 0, stdout: 'one\ntwo\n', stderr: 'warn\n' });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('reports a binary that does not exist as missing, by name or by path', async () => {
    for (const cmd of ['compliance-agent-no-such-binary', '/nonexistent/bin/nixos-rebuild']) {
      const r = await host.exec(cmd, ['--version'], { timeoutMs: 10_000 });
      expect(r).toMatchObject({ status: 'missing', exitCode: null, stdout: '' });
      expect(r.stderr).toContain('command not found');
    }
  });

  it('reports a non-zero exit with its code and stderr', async () => {
    const r = await host.exec('sh', ['-c', 'echo "Job for x.service failed" >&2; exit 3'], { timeoutMs: 10_000 });
    expect(r).toMatchObject({ status: 'nonzero', exitCode: 3, stderr: 'Job for x.service failed\n' });
  });

  it('never runs a shell: metacharacters in arguments are plain text', async () => {
    const r = await host.exec('echo', ['$(id)', ';', 'rm', '-rf', '/', '`id`'], { timeoutMs: 10_000 });
    expect(r.stdout).toBe('$(id) ; rm -rf / `id`\n');
  });

  it('kills a real sleep at the timeout and reports timeout', async () => {
    const r = await host.exec('sleep', ['30.1234'], { timeoutMs: 300 });
    expect(r).toMatchObject({ status: 'timeout', exitCode: null });
    expect(liveCommandLines().filter((c) => c.includes('sleep 30.1234'))).toEqual([]);
  });

  it('SIGKILLs the whole process group after the grace period when SIGTERM is ignored', async () => {
    // The inner sleep inherits the ignored SIGTERM and holds stdout open: only a group SIGKILL ends the call.
    const r = await host.exec('sh', ['-c', 'trap "" TERM; sleep 30.5678; echo never'], { timeoutMs: 300 });
    expect(r).toMatchObject({ status: 'timeout', exitCode: null });
    expect(r.stdout).not.toContain('never');
    expect(liveCommandLines().filter((c) => c.includes('sleep 30.5678'))).toEqual([]);
  });

  it('reports a process killed by a signal as error', async () => {
    const r = await host.exec('sh', ['-c', 'kill -9 $$'], { timeoutMs: 10_000 });
    expect(r).toMatchObject({ status: 'error', exitCode: null });
    expect(r.stderr).toContain('SIGKILL');
  });

  it('bounds a large output: the process is killed and at most maxOutputBytes is kept', async () => {
    const big = await host.exec('head', ['-c', '50000000', '/dev/zero'], { timeoutMs: 20_000 });
    expect(big.status).toBe('error');
    expect(big.stdout.length).toBeLessThanOrEqual(64 * 1024);
    expect(big.stderr).toContain('output exceeded 65536 bytes');
    const endless = await host.exec('yes', ['compliance'], { timeoutMs: 20_000 });
    expect(endless.status).toBe('error');
    expect(endless.stdout.length).toBeLessThanOrEqual(64 * 1024);
  });

  it('gives commands a minimal environment: PATH and LC_ALL only, nothing of the agent', async () => {
    process.env.CA_TEST_SECRET_TOKEN = 'do-not-leak';
    try {
      const r = await host.exec('env', [], { timeoutMs: 10_000 });
      const names = r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split('=')[0]);
      expect(names.sort()).toEqual(['LC_ALL', 'PATH']);
      expect(r.stdout).not.toContain('do-not-leak');
    } finally {
      delete process.env.CA_TEST_SECRET_TOKEN;
    }
  });

  it('passes through only the named variables (the healer hands HOME and proxies to nixos-rebuild)', async () => {
    process.env.CA_TEST_SECRET_TOKEN = 'do-not-leak';
    process.env.https_proxy = 'http://proxy.clinic.example:3128';
    try {
      const healer = new RealHost({ passEnv: REBUILD_ENV });
      const r = await healer.exec('env', [], { timeoutMs: 10_000, everyCycle });
      expect(r.stdout).toContain('https_proxy=http://proxy.clinic.example:3128\n');
      expect(r.stdout).toContain(`HOME=${process.env.HOME}\n`);
      expect(r.stdout).not.toContain('do-not-leak');
    } finally {
      delete process.env.CA_TEST_SECRET_TOKEN;
      delete process.env.https_proxy;
    }
  });

  it('passes input on stdin when given (execa: the every-cycle path runs queries without input)', async () => {
    const r = await host.exec('cat', [], { timeoutMs: 10_000, input: 'order\n' });
    expect(r).toMatchObject({ status: 'ok', stdout: 'order\n' });
  });

  it('reports a path that cannot be executed as error, not missing', async () => {
    const r = await host.exec(tmp.path, [], { timeoutMs: 10_000 });
    expect(r.status).toBe('error');
  });
});

describe('RealHost files, clock and name', () => {
  const host = new RealHost();
  const dir = join(tmp.path, 'files');
  mkdirSync(dir, { recursive: true });

  it('reads a file within the bound and refuses a larger one without reading it all', async () => {
    writeFileSync(join(dir, 'small'), 'stamp\n');
    writeFileSync(join(dir, 'large'), 'x'.repeat(5000));
    expect(await host.readFile(join(dir, 'small'))).toEqual({ ok: true, text: 'stamp\n' });
    expect(await host.readFile(join(dir, 'large'), 5000)).toEqual({ ok: true, text: 'x'.repeat(5000) });
    expect(await host.readFile(join(dir, 'large'), 4999)).toMatchObject({ ok: false, code: 'TOO_LARGE' });
    expect(await host.readFile('/dev/zero', 1024)).toMatchObject({ ok: false, code: 'TOO_LARGE' });
  });

  it('sizes its buffers from the file, not from the bound; a file whose size says 0 (/proc) is read a chunk at a time', async () => {
    writeFileSync(join(dir, 'snapshot'), 'table inet filter {}\n');
    const alloc = vi.spyOn(Buffer, 'alloc');
    const allocUnsafe = vi.spyOn(Buffer, 'allocUnsafe');
    try {
      expect(await host.readFile(join(dir, 'snapshot'), 1024 * 1024)).toEqual({ ok: true, text: 'table inet filter {}\n' });
      const sizes = [...alloc.mock.calls, ...allocUnsafe.mock.calls].map((c) => c[0]);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(64 * 1024);
    } finally {
      alloc.mockRestore();
      allocUnsafe.mockRestore();
    }
    // /proc files report size 0: read a chunk at a time to their end.
    const status = await host.readFile('/proc/self/status');
    expect(status.ok && status.text).toContain('VmRSS:');
  });

  it('maps missing files and directories to their codes', async () => {
    expect(await host.readFile(join(dir, 'absent'))).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(await host.readFile(join(dir, 'small', 'below'))).toMatchObject({ ok: false, code: 'ENOENT' });
    expect(await host.readFile(dir)).toMatchObject({ ok: false, code: 'EISDIR' });
  });

  it('stats mtime, size and mode; null for a missing path', async () => {
    const p = join(dir, 'stamp');
    writeFileSync(p, 'ok', { mode: 0o640 });
    utimesSync(p, 1_700_000_000, 1_700_000_000);
    const st = await host.stat(p);
    expect(st).toMatchObject({ mtimeMs: 1_700_000_000_000, size: 2 });
    expect(st!.mode & 0o777).toBe(0o640);
    expect(await host.stat(join(dir, 'absent'))).toBeNull();
  });

  it('reads a link as stored and resolves a chain of links; null for a file, a missing path or a dangling link', async () => {
    const target = join(dir, 'system-7');
    mkdirSync(target, { recursive: true });
    symlinkSync('system-7', join(dir, 'profile-link'));
    symlinkSync(join(dir, 'profile-link'), join(dir, 'current'));
    symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
    expect(await host.readlink(join(dir, 'profile-link'))).toBe('system-7');
    expect(await host.realpath(join(dir, 'current'))).toBe(realpathSync(target));
    writeFileSync(join(dir, 'plain'), '');
    expect(await host.readlink(join(dir, 'plain'))).toBeNull();
    expect(await host.readlink(join(dir, 'absent'))).toBeNull();
    expect(await host.realpath(join(dir, 'dangling'))).toBeNull();
  });

  it('uses the wall clock and the machine name', () => {
    const before = Date.now();
    const now = host.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
    expect(host.hostname()).toBe(hostname());
  });
});
