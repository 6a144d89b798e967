import { createHash } from 'node:crypto';

/** Nix's base32 alphabet (no e, o, u, t). */
const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

/** A deterministic, well-formed store hash part for a simulated build of `seed`. */
export function storeHash(seed: string): string {
  const digest = createHash('sha256').update(seed).digest();
  let out = '';
  for (let i = 0; i < 32; i++) out += NIX32[digest[i]! % 32];
  return out;
}

export function hexOf(seed: string, length: number): string {
  return createHash('sha256').update(seed).digest('hex').slice(0, length);
}
