import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect, it } from 'vitest';

// Every property in the suite runs with the suite's fixed seed and prints it (test/helpers/fuzz.ts):
// a property without one would make `npm test` differ from run to run and a failure unreproducible.

const TEST_DIR = join(import.meta.dirname, '..');

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

it('every fc.assert in test/ is given seeded(...) parameters', () => {
  const unseeded: string[] = [];
  let asserts = 0;
  for (const file of testFiles(TEST_DIR)) {
    const text = readFileSync(file, 'utf8');
    const n = text.match(/\bfc\.assert\(/g)?.length ?? 0;
    const seeded = text.match(/\bseeded\(/g)?.length ?? 0;
    asserts += n;
    if (n > seeded) unseeded.push(`${relative(TEST_DIR, file)}: ${n} fc.assert, ${seeded} seeded(...)`);
  }
  expect(asserts).toBeGreaterThan(10);
  expect(unseeded).toEqual([]);
});
