import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { REPO, run } from './nix.js';

/**
 * packages/compliance-agent/strip-node-modules.sh on a copy of the real, compiled better-sqlite3
 * (this machine's node_modules), with what node-gyp and npm leave in a Nix build added: the
 * python3 link in build/node_gyp_bins and npm's hidden lockfile naming store tarballs.
 */
const dir = tempDir('ca-strip-');
afterAll(() => dir.cleanup());
const SCRIPT = join(REPO, 'packages/compliance-agent/strip-node-modules.sh');

function files(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' }).map((f) => join(root, f));
}

function installed(name: string): string {
  const modules = join(dir.path, name, 'node_modules');
  mkdirSync(modules, { recursive: true });
  for (const pkg of ['better-sqlite3', 'bindings', 'file-uri-to-path']) cpSync(join(REPO, 'node_modules', pkg), join(modules, pkg), { recursive: true, dereference: true });
  mkdirSync(join(modules, 'better-sqlite3/build/node_gyp_bins'), { recursive: true });
  symlinkSync('/nix/store/00000000000000000000000000000000-python3-3.13.5/bin/python3', join(modules, 'better-sqlite3/build/node_gyp_bins/python3'));
  writeFileSync(
    join(modules, '.package-lock.json'),
    JSON.stringify({ packages: { 'node_modules/bindings': { resolved: 'file:/nix/store/00000000000000000000000000000000-bindings-1.5.0.tgz' } } }),
  );
  return modules;
}

describe('strip-node-modules.sh', () => {
  it('leaves the addon and the JavaScript, and nothing that names the build tools', () => {
    const modules = installed('ok');
    const gypi = readFileSync(join(modules, 'better-sqlite3/build/config.gypi'), 'utf8');
    const nodedir = /"nodedir": "([^"]+)"/.exec(gypi)![1]!;
    run('sh', [SCRIPT, modules]);

    expect(readdirSync(join(modules, 'better-sqlite3/build'))).toEqual(['Release']);
    expect(readdirSync(join(modules, 'better-sqlite3/build/Release'))).toEqual(['better_sqlite3.node']);
    for (const gone of ['deps', 'src', 'binding.gyp']) expect(existsSync(join(modules, 'better-sqlite3', gone))).toBe(false);
    expect(existsSync(join(modules, '.package-lock.json'))).toBe(false);

    const all = files(modules);
    const links = all.filter((f) => lstatSync(f).isSymbolicLink()).map((f) => readlinkSync(f));
    expect(links.filter((l) => l.includes('python'))).toEqual([]);
    const texts = all.filter((f) => lstatSync(f).isFile() && !f.endsWith('.node')).map((f) => readFileSync(f, 'utf8'));
    expect(texts.filter((t) => t.includes('/nix/store/') || t.includes(`"nodedir": "${nodedir}"`))).toEqual([]);

    // The stripped package still opens a database with the compiled addon.
    const out = execFileSync(
      process.execPath,
      ['-e', `const D = require(${JSON.stringify(join(modules, 'better-sqlite3'))}); console.log(new D(':memory:').prepare('select 40 + 2 as x').get().x)`],
      { encoding: 'utf8' },
    );
    expect(out.trim()).toBe('42');
  });

  it('fails when the addon is not where the JavaScript loads it from, instead of shipping a broken package', () => {
    const modules = installed('no-addon');
    run('rm', [join(modules, 'better-sqlite3/build/Release/better_sqlite3.node')]);
    expect(() => run('sh', [SCRIPT, modules])).toThrow(/exit 1/);
    expect(existsSync(join(modules, 'better-sqlite3/deps'))).toBe(true);
  });
});
