import { randomBytes } from 'node:crypto';
import { writeFileAtomic } from '../common/index.js';
import { formatSecretKey, publicKeyOf, randomSeed, type SecretKey } from '../crypto/index.js';

/** A fresh evidence key named HOST-YYYYMMDD-XXXX, so every key of a chain has its own keyid. */
export function newEvidenceKey(hostId: string, now: number): SecretKey {
  const day = new Date(now).toISOString().slice(0, 10).replace(/-/g, '');
  const seed = randomSeed();
  return { keyId: `${hostId.slice(0, 110)}-${day}-${randomBytes(2).toString('hex')}`, seed, publicKey: publicKeyOf(seed) };
}

export function writeEvidenceKey(path: string, key: SecretKey): void {
  writeFileAtomic(path, formatSecretKey(key) + '\n', 0o600);
}
