import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPreviousExit } from '../../src/agent/index.js';
import { tempDir } from '../helpers/tmp.js';
import { REPO, render, run } from './nix.js';

const dir = tempDir('ca-launch-');
afterAll(() => dir.cleanup());

/** The V8 flags the agent must start with (bench/RESULTS.md says why each). */
const NODE_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size', '--liftoff-only', '--no-opt', '--no-maglev'];

/** glibc malloc settings the launcher exports (they keep the native heap from fragmenting). */
const MALLOC = 'MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=131072';

const unit = render().agentUnit;
const directive = (name: string): string[] =>
  unit
    .split('\n')
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1));

/** systemd's splitting of a command line: words, '...' and "..." quoting, $$ for a literal $. */
function systemdWords(line: string): string[] {
  const words: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) words.push((m[1] ?? m[2] ?? m[3]!).replace(/\$\$/g, '$'));
  return words;
}

/** The --replace-fail pairs packages/compliance-agent/default.nix applies to the launcher. */
function packageSubstitutions(): [string, string][] {
  const nix = readFileSync(join(REPO, 'packages/compliance-agent/default.nix'), 'utf8');
  return [...nix.matchAll(/--replace-fail '([^']*)' ("[^"]*"|'[^']*')/g)].map((m) => [m[1]!, m[2]!.slice(1, -1)]);
}

/** A `node` that prints its arguments, one per line, then the malloc settings it was given. */
function fakeNode(at: string): string {
  mkdirSync(at, { recursive: true });
  const path = join(at, 'node');
  writeFileSync(
    path,
    '#!/bin/sh\nfor a in "$@"; do printf \'%s\\n\' "$a"; done\nprintf \'MALLOC_MMAP_THRESHOLD_=%s MALLOC_TRIM_THRESHOLD_=%s\\n\' "$MALLOC_MMAP_THRESHOLD_" "$MALLOC_TRIM_THRESHOLD_"\n',
  );
  chmodSync(path, 0o755);
  return path;
}

function launch(launcher: string, args: string[], path: string): string[] {
  const r = spawnSync(launcher, args, { encoding: 'utf8', env: { PATH: path } });
  if (r.status !== 0) throw new Error(`${launcher} exited ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

describe('the agent unit starts the shipped bundle through the launcher', () => {
  const [exe, ...args] = systemdWords(directive('ExecStart')[0]!);

  it('ExecStart runs the package executable (the launcher) with `run --config`', () => {
    expect(directive('ExecStart')).toHaveLength(1);
    expect(exe).toBe('/run/current-system/sw/bin/compliance-agent');
    expect(args).toEqual(['run', '--config', '/etc/compliance-agent/config.json']);
    expect(unit).not.toContain('NODE_OPTIONS');
  });

  it('as the Nix package installs it, the launcher runs its pinned node with the flags on the bundle', () => {
    const pkg = join(dir.path, 'pkg');
    cpSync(join(REPO, 'bin'), join(pkg, 'bin'), { recursive: true });
    const node = fakeNode(join(dir.path, 'store-node'));
    const subs = packageSubstitutions();
    expect(subs.map(([from]) => from.split('=')[0])).toEqual(['pkg', 'node']);
    const launcher = join(pkg, 'bin', 'compliance-agent');
    let text = readFileSync(launcher, 'utf8');
    for (const [from, to] of subs) {
      expect(text.split('\n')).toContain(from);
      text = text.replace(from, to.replace('$pkgDir', pkg).replace('${lib.getExe nodejs}', node));
    }
    writeFileSync(launcher, text);
    // No PATH at all: the installed launcher needs none.
    expect(launch(launcher, args, '/nonexistent')).toEqual([...NODE_FLAGS, join(pkg, 'dist/bundle/compliance-agent.mjs'), ...args, MALLOC]);
  });

  it('as npm links it (a symlink in a bin directory), it finds its package and node on PATH', () => {
    const binDir = join(dir.path, 'npm-bin');
    mkdirSync(binDir);
    symlinkSync(join(REPO, 'bin', 'compliance-agent'), join(binDir, 'compliance-agent'));
    const path = `${join(dir.path, 'path-node')}:/usr/bin:/bin`;
    fakeNode(join(dir.path, 'path-node'));
    expect(launch(join(binDir, 'compliance-agent'), ['--version'], path)).toEqual([...NODE_FLAGS, join(REPO, 'dist/bundle/compliance-agent.mjs'), '--version', MALLOC]);
  });

  it('this node accepts every flag (node refuses an unknown one with "bad option")', () => {
    const r = spawnSync(process.execPath, [...NODE_FLAGS, '-e', 'process.stdout.write(String(require("v8").getHeapStatistics().total_heap_size > 0))'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('true');
  });
});

describe('the agent unit promises its memory and records how each run ended', () => {
  it('MemoryHigh= below MemoryMax=, both sized over the measured figure, and the kernel OOM kill stops the unit', () => {
    const size = (v: string) => {
      const m = /^(\d+)M$/.exec(v);
      if (!m) throw new Error(`memory limit "${v}" is not in M`);
      return Number(m[1]);
    };
    const [high] = directive('MemoryHigh').map(size);
    const [max] = directive('MemoryMax').map(size);
    expect(high).toBeLessThan(max!);
    // bench/RESULTS.md: the largest production-like RSS measured; the limit leaves room above it.
    const measured = [...readFileSync(join(REPO, 'bench/RESULTS.md'), 'utf8').matchAll(/^\| agent RSS after [\d,]+ cycles, production-like[^|]*\| ([\d.]+) MB/gm)].map((m) =>
      Number(m[1]),
    );
    expect(measured.length).toBeGreaterThanOrEqual(2);
    expect(high).toBeGreaterThanOrEqual(1.5 * Math.max(...measured));
    expect(directive('OOMPolicy')).toEqual(['stop']);
  });

  it('systemd-analyze verify accepts the unit', () => {
    const path = join(dir.path, 'verify', 'compliance-agent.service');
    mkdirSync(join(dir.path, 'verify'));
    writeFileSync(path, unit.replace('/run/current-system/sw/bin/compliance-agent', join(REPO, 'bin', 'compliance-agent')));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', path], { encoding: 'utf8' });
    if (r.error) throw new Error('systemd-analyze is not installed (.ci/run installs it with apt-get)');
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('ExecStopPost= writes what systemd says of the run where the agent reads it at its next start', () => {
    const [stopPost, ...more] = directive('ExecStopPost');
    expect(more).toEqual([]);
    const words = systemdWords(stopPost!);
    expect(words.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(words).toHaveLength(3);
    const stateDir = join(dir.path, 'state');
    mkdirSync(stateDir);
    const script = words[2]!.replace('/var/lib/compliance-agent/', `${stateDir}/`);
    expect(script).not.toBe(words[2]);
    const stop = (env: Record<string, string>) => run('/bin/sh', ['-c', script], { env });
    stop({ SERVICE_RESULT: 'oom-kill', EXIT_CODE: 'killed', EXIT_STATUS: 'KILL' });
    expect(readPreviousExit(stateDir)).toMatchObject({ kind: 'exit', exit: { serviceResult: 'oom-kill', exitCode: 'killed', exitStatus: 'KILL' } });
    stop({ SERVICE_RESULT: 'success', EXIT_CODE: 'exited', EXIT_STATUS: '0' });
    expect(readPreviousExit(stateDir)).toMatchObject({ kind: 'exit', exit: { serviceResult: 'success', exitCode: 'exited', exitStatus: '0' } });
  });
});
