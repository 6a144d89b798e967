import * as ed from '@noble/ed25519';
import { createHash, createPrivateKey, createPublicKey, sign as opensslSign, verify as opensslVerify, type KeyObject } from 'node:crypto';
import { AgentError } from '../common/index.js';

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
    if (seed.length !== 32) throw new AgentError('key_parse', `an Ed25519 seed is 32 bytes, got ${seed.length}`);
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    signingKeys.set(seed, key);
  }
  return key;
}

/** SPKI DER of an Ed25519 public key: this prefix, then the 32 raw bytes (RFC 8410). */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const verifyingKeys = new Map<string, KeyObject>();

/**
 * RFC 8032 verification (cofactorless, canonical S) through node:crypto (OpenSSL), the verifier an
 * auditor's openssl uses, so the two agree on every signature (test/fuzz/ed25519-verify.test.ts
 * checks it against @noble/ed25519 in strict mode, on forged and malformed signatures and keys
 * too). Every countersigned MCP receipt is verified on the flush path: OpenSSL takes about 0.3 ms
 * where @noble takes about 4 (at load 15 on this machine).
 */
export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return opensslVerify(null, message, verifyingKey(publicKey), signature);
  } catch {
    // A public key that is no curve point: for a verifier that is simply "not valid".
    return false;
  }
}

function verifyingKey(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString('hex');
  let key = verifyingKeys.get(id);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    // A handful of trusted keys in practice; bounded whatever a caller passes.
    if (verifyingKeys.size >= 256) verifyingKeys.clear();
    verifyingKeys.set(id, key);
  }
  return key;
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
