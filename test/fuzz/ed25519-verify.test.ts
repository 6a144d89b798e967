import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as noble from '@noble/ed25519';
import { publicKeyOf, sign, verify } from '../../src/crypto/index.js';
import { seeded } from '../helpers/fuzz.js';

// The agent verifies with node:crypto (OpenSSL), as an auditor's openssl does. It must agree with
// @noble/ed25519's strict RFC 8032 mode on every signature: genuine ones, and ones with a flipped
// bit, a non-canonical S (S + L), random bytes, and public keys that are random or of small order.
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function reference(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  try {
    return noble.verify(sig, msg, pub, { zip215: false });
  } catch {
    return false;
  }
}

function withS(sig: Uint8Array, s: bigint): Uint8Array {
  const out = Uint8Array.from(sig);
  for (let i = 0; i < 32; i++) out[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
  return out;
}

function sOf(sig: Uint8Array): bigint {
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
  return s;
}

// Small-order points (the identity, order 2, 4 and 8 encodings): keys no honest signer has.
const SMALL_ORDER = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
].map((h) => Uint8Array.from(Buffer.from(h, 'hex')));

it('openssl and @noble strict agree on 2,000 genuine, tampered and malformed signatures', () => {
  const mutation = fc.constantFrom('genuine', 'flip', 'non_canonical_s', 'random_sig', 'random_key', 'small_order_key', 'zero_s');
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ maxLength: 256 }),
      mutation,
      fc.nat(),
      fc.uint8Array({ minLength: 96, maxLength: 96 }),
      (seed, msg, kind, n, noise) => {
        let sig = sign(msg, seed);
        let pub = publicKeyOf(seed);
        if (kind === 'flip') {
          sig = Uint8Array.from(sig);
          sig[n % 64]! ^= 1 << (n % 8);
        } else if (kind === 'non_canonical_s') sig = withS(sig, sOf(sig) + L);
        else if (kind === 'zero_s') sig = withS(sig, 0n);
        else if (kind === 'random_sig') sig = noise.subarray(0, 64);
        else if (kind === 'random_key') pub = noise.subarray(64, 96);
        else if (kind === 'small_order_key') pub = SMALL_ORDER[n % SMALL_ORDER.length]!;
        const expected = reference(sig, msg, pub);
        expect(verify(sig, msg, pub), kind).toBe(expected);
        if (kind === 'genuine') expect(expected).toBe(true);
        if (kind === 'non_canonical_s') expect(expected).toBe(false);
      },
    ),
    seeded('ed25519 verify: node:crypto against @noble strict', { numRuns: 2000 }),
  );
});
