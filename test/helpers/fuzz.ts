import { createHash } from 'node:crypto';
import type { Parameters } from 'fast-check';

function seedFromEnv(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw === '') return 20261130;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * The seed of every property in the suite: fixed, so `npm test` runs the same cases every time and a
 * failure reproduces; `FUZZ_SEED=n` (with FUZZ_RUNS) runs another campaign. A counterexample a
 * campaign finds becomes a plain regression test.
 */
const FUZZ_SEED = seedFromEnv();

/** fc.assert parameters with the suite's seed, printed with the property's name. */
export function seeded<Ts>(name: string, options: Parameters<Ts> = {}): Parameters<Ts> {
  console.log(`fast-check ${name}: seed ${FUZZ_SEED}, ${options.numRuns ?? 100} runs (FUZZ_SEED=${FUZZ_SEED} reproduces)`);
  return { ...options, seed: FUZZ_SEED };
}

/** Key material fixed per label, so the bytes a property mutates (signatures) are the same on every run. */
export function fixedKeySeed(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`fuzz key ${label}`).digest());
}
