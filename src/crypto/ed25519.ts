import * as ed from '@noble/ed25519';
import { createHash, createPrivateKey, createPublicKey, sign as opensslSign, type KeyObject } from 'node:crypto';

// @noble/ed25519 v3 needs a synchronous SHA-512; node:crypto provides one.
ed.hashes.sha512 = (message: Uint8Array) => new Uint8Array(createHash('sha512').update(message).digest());

/** PKCS#8 DER of an Ed25519 private key: this prefix, then the 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const signingKeys = new WeakMap<Uint8Array, KeyObject>();

/**
 * Signs with node:crypto (OpenSSL). Ed25519 signatures are deterministic (RFC 8032), so this is
 * byte for byte what @noble/ed25519 produces (test/fuzz/ed25519.test.ts), at about 7 times the
 * rate (bench/ed25519.ts): signing is most of the evidence chain's cost per bundle, and the
 * durable enqueue rate is a budget. The key object is made once per seed.
 */
export function sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  return new Uint8Array(opensslSign(null, message, signingKey(seed)));
}

function signingKey(seed: Uint8Array): KeyObject {
  let key = signingKeys.get(seed);
  if (!key) {
    if (seed.length !== 32) throw new Error(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    signingKeys.set(seed, key);
  }
  return key;
}

/** RFC 8032 strict verification (not ZIP-215), so openssl and this agent agree on every signature. */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return ed.verify(signature, message, publicKey, { zip215: false });
  } catch {
    // noble throws on malformed points; for a verifier that is simply "not valid".
    return false;
  }
}

/**
 * Through node:crypto too: it is the same point, and @noble's first use builds its precomputed
 * tables (~15 ms), which the agent's start would otherwise pay before its first poll.
 */
export function publicKeyOf(seed: Uint8Array): Uint8Array {
  // The SPKI DER of an Ed25519 key ends with the 32-byte public key.
  return new Uint8Array(createPublicKey(signingKey(seed)).export({ format: 'der', type: 'spki' }).subarray(-32));
}

export function randomSeed(): Uint8Array {
  return ed.utils.randomSecretKey();
}
