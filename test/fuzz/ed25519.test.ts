import fc from 'fast-check';
import { expect, it } from 'vitest';
import * as noble from '@noble/ed25519';
import { publicKeyOf, sign, verify } from '../../src/crypto/index.js';
import { seeded } from '../helpers/fuzz.js';

// The agent signs and verifies with node:crypto; @noble/ed25519 is the reference: Ed25519 is
// deterministic, so for any key and message the two must produce the same bytes, and each must
// accept the other's (disagreements on bad signatures: test/fuzz/ed25519-verify.test.ts).
it('1,000 random keys and messages: the agent public key and signature are byte for byte @noble/ed25519, and verify', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 4096 }), (seed, message) => {
      expect(Buffer.from(publicKeyOf(seed)).equals(Buffer.from(noble.getPublicKey(seed)))).toBe(true);
      const sig = sign(message, seed);
      expect(Buffer.from(sig).equals(Buffer.from(noble.sign(message, seed)))).toBe(true);
      expect(verify(sig, message, publicKeyOf(seed))).toBe(true);
      if (message.length > 0) {
        const other = Uint8Array.from(message);
        other[0]! ^= 1;
        expect(verify(sig, other, publicKeyOf(seed))).toBe(false);
      }
    }),
    seeded('ed25519 against @noble and node:crypto', { numRuns: 1000 }),
  );
});

it('a seed that is not 32 bytes is refused', () => {
  expect(() => sign(new Uint8Array(4), new Uint8Array(31))).toThrow(/32 bytes, got 31/);
});
