import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { spawnSync } from 'node:child_process';

// better-sqlite3 12 built against Node >= 24.19 headers aborts the process when V8 collects one
// of its objects (patches/better-sqlite3-12.11.1.patch explains why and is the fix). These tests
// run under whichever Node runs the suite; CI runs it under Node 20 and Node 24.
const require = createRequire(import.meta.url);
const addon = join(dirname(require.resolve('better-sqlite3/package.json')), 'build', 'Release', 'better_sqlite3.node');

describe('better-sqlite3 native build', () => {
  it('does not remove environment cleanup hooks from its destructors', () => {
    const imported = readFileSync(addon).includes('RemoveEnvironmentCleanupHook');
    expect(imported, `${addon} calls node::RemoveEnvironmentCleanupHook: build it with scripts/patch-better-sqlite3.sh applied`).toBe(false);
  });

  it('survives the garbage collection of many statements, iterators and databases', () => {
    const r = spawnSync(process.execPath, ['scripts/check-better-sqlite3-gc.mjs'], { encoding: 'utf8' });
    expect({ status: r.status, signal: r.signal, stderr: r.stderr.slice(0, 2000) }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(r.stdout).toMatch(/^better-sqlite3: 300000 collectable wrappers survived garbage collection on Node v\d+/);
  });
});
