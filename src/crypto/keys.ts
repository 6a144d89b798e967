import { createPrivateKey, createPublicKey } from 'node:crypto';
import { AgentError } from '../common/index.js';
import { decodeBase64Strict } from './base64.js';
import { publicKeyOf } from './ed25519.js';

/** An Ed25519 signing key. `keyId` is the name (`name:base64`, as Nix binary cache keys). */
export interface SecretKey {
  readonly keyId: string;
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A trusted Ed25519 public key. `keyId` is null for a bare PEM key, which carries no name. */
export interface PublicKey {
  readonly keyId: string | null;
  readonly publicKey: Uint8Array;
}

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function splitNamed(text: string): { name: string; bytes: Buffer } | null {
  const idx = text.indexOf(':');
  if (idx <= 0) return null;
  const name = text.slice(0, idx);
  const bytes = decodeBase64Strict(text.slice(idx + 1));
  if (!KEY_NAME.test(name) || !bytes) return null;
  return { name, bytes };
}

/**
 * Parse a private key file: PKCS#8 PEM (`openssl genpkey -algorithm ed25519`) or the
 * `name:base64(seed||pub)` form of `nix-store --generate-binary-cache-key`.
 * `pemName` names a PEM key, which has no name of its own. Errors never echo key material.
 */
export function parseSecretKey(text: string, pemName: string, source: string): SecretKey {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    let jwk: { kty?: string; crv?: string; d?: string };
    try {
      const key = createPrivateKey({ key: trimmed, format: 'pem' });
      if (key.asymmetricKeyType !== 'ed25519') {
        throw new AgentError('key_type', `${source}: private key is ${key.asymmetricKeyType}, expected ed25519`);
      }
      jwk = key.export({ format: 'jwk' });
    } catch (e) {
      if (e instanceof AgentError) throw e;
      throw new AgentError('key_parse', `${source}: not a readable PKCS#8 PEM private key`);
    }
    const seed = new Uint8Array(Buffer.from(jwk.d ?? '', 'base64url'));
    if (seed.length !== 32) throw new AgentError('key_parse', `${source}: Ed25519 private key has the wrong length`);
    if (!KEY_NAME.test(pemName)) throw new AgentError('key_parse', `${source}: cannot derive a key id from the file name`);
    return { keyId: pemName, seed, publicKey: publicKeyOf(seed) };
  }
  const named = splitNamed(trimmed);
  if (!named || named.bytes.length !== 64) {
    throw new AgentError('key_parse', `${source}: expected PKCS#8 PEM or name:base64 (64-byte Ed25519 secret key)`);
  }
  const seed = new Uint8Array(named.bytes.subarray(0, 32));
  const pub = publicKeyOf(seed);
  if (!Buffer.from(pub).equals(named.bytes.subarray(32))) {
    throw new AgentError('key_parse', `${source}: secret key's embedded public half does not match`);
  }
  return { keyId: named.name, seed, publicKey: pub };
}

/** Parse `name:base64(32 bytes)` or an SPKI PEM public key. */
export function parsePublicKey(text: string, source: string): PublicKey {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN')) {
    try {
      const key = createPublicKey({ key: trimmed, format: 'pem' });
      if (key.asymmetricKeyType !== 'ed25519') throw new Error('type');
      const jwk = key.export({ format: 'jwk' }) as { x?: string };
      return { keyId: null, publicKey: new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url')) };
    } catch {
      throw new AgentError('key_parse', `${source}: not an Ed25519 SPKI PEM public key`);
    }
  }
  const named = splitNamed(trimmed);
  if (!named || named.bytes.length !== 32) {
    throw new AgentError('key_parse', `${source}: expected name:base64 (32-byte Ed25519 public key) or PEM`);
  }
  return { keyId: named.name, publicKey: new Uint8Array(named.bytes) };
}

export function formatPublicKey(keyId: string, publicKey: Uint8Array): string {
  return `${keyId}:${Buffer.from(publicKey).toString('base64')}`;
}

export function formatSecretKey(key: SecretKey): string {
  return `${key.keyId}:${Buffer.concat([key.seed, key.publicKey]).toString('base64')}`;
}

export function publicKeyToPem(publicKey: Uint8Array): string {
  const x = Buffer.from(publicKey).toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
}

export function isValidKeyName(name: string): boolean {
  return KEY_NAME.test(name);
}
