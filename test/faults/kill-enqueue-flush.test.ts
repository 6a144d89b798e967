import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';
import { KILL_SITE_CONFIG, bundleChild, drainAndVerify, killLoop } from './kill-loop.js';

// Half of the kill -9 loop (kill-heal-prune.test.ts is the other half): 26 kills aimed at the
// group commit of a cycle's evidence and at flushes to a slow MCP, with heals and prunes between.
const RUNS = 26;
const tmp = tempDir('ca-kill-ef-');
let h: Harness;
let child: Awaited<ReturnType<typeof bundleChild>>;
beforeAll(async () => {
  [h, child] = await Promise.all([startHarness(tmp.path, { config: KILL_SITE_CONFIG }), bundleChild()]);
});
afterAll(async () => {
  await h?.close();
  child?.cleanup();
  tmp.cleanup();
});

it(`kill -9 of the agent during enqueue and flush, ${RUNS} times: nothing lost, nothing stored twice, chain intact`, async () => {
  const loop = await killLoop(h, child.path, { targets: ['enqueue', 'flush'], runs: RUNS });
  expect(loop.runs.length).toBe(RUNS);
  // The kills landed where aimed (the last phase announced before death), enough times each.
  for (const phase of ['enqueue', 'flush']) expect(loop.runs.filter((r) => r.killedIn === phase).length).toBeGreaterThanOrEqual(RUNS / 4);
  const { n } = await drainAndVerify(h, loop);
  expect(n).toBeGreaterThan(RUNS);
});
