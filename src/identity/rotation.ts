import { AgentError } from '../common/index.js';
import type { Config } from '../config/index.js';
import { formatPublicKey, loadSecretKeyFile, type SecretKey } from '../crypto/index.js';
import { KEY_ROTATION_CHECK, type EvidenceSpec } from '../evidence/index.js';
import { getKv, setKv, type StateDb } from '../state/index.js';
import { newEvidenceKey, writeEvidenceKey } from './evidence-key.js';
import { exists, identityPaths, renameDurable, type IdentityPaths } from './files.js';
import { keyFingerprint } from './protocol.js';

/** kv: the public key the last chained rotation bundle introduced (`name:base64`). */
const INTRODUCED = 'evidence_key_introduced';

/**
 * Stage a new evidence key beside the current one (`signingKeyFile.next`, 0600). The agent
 * introduces it in its next cycle with a rotation bundle signed by the current key, and signs
 * with it from the bundle after. Refuses while another rotation is staged.
 */
export function stageKeyRotation(config: Config, now: number): SecretKey {
  const paths = identityPaths(config);
  if (exists(paths.signingKeyNext))
    throw new AgentError('rotation_pending', `${paths.signingKeyNext} exists: a rotation is already staged; the agent introduces it at its next cycle`);
  if (!exists(paths.signingKey)) throw new AgentError('key_read', `signingKeyFile ${paths.signingKey} does not exist: nothing to rotate`);
  const key = newEvidenceKey(config.hostId, now);
  writeEvidenceKey(paths.signingKeyNext, key);
  return key;
}

export interface PendingRotation {
  readonly spec: EvidenceSpec;
  readonly key: SecretKey;
  /** In the transaction that chains the rotation bundle. */
  record(db: StateDb): void;
  /** After it committed: the staged key becomes signingKeyFile. */
  commit(): void;
}

export function pendingRotation(paths: IdentityPaths, current: SecretKey, now: number): PendingRotation | null {
  if (!exists(paths.signingKeyNext)) return null;
  const key = loadSecretKeyFile(paths.signingKeyNext);
  const newKey = formatPublicKey(key.keyId, key.publicKey);
  return {
    key,
    spec: {
      check: KEY_ROTATION_CHECK,
      outcome: 'compliant',
      startedAt: now,
      endedAt: now,
      controls: ['HIPAA 164.312(c)(1)', 'SOC 2 CC6.1'],
      preState: { key: formatPublicKey(current.keyId, current.publicKey), key_fingerprint: keyFingerprint(current.publicKey) },
      postState: { new_key: newKey, new_key_fingerprint: keyFingerprint(key.publicKey) },
      reason: `evidence key rotated: ${current.keyId} signs this bundle and hands over to ${key.keyId}, which signs every bundle after it`,
    },
    record: (db) => setKv(db, INTRODUCED, newKey),
    commit: () => renameDurable(paths.signingKeyNext, paths.signingKey),
  };
}

/**
 * At start: a staged key that the chain already introduced (a crash came between the rotation
 * bundle's commit and the rename) becomes the signing key now; one it never introduced stays
 * staged for the next cycle.
 */
export function settleRotation(paths: IdentityPaths, db: StateDb): void {
  if (!exists(paths.signingKeyNext)) return;
  const key = loadSecretKeyFile(paths.signingKeyNext);
  if (getKv(db, INTRODUCED) === formatPublicKey(key.keyId, key.publicKey)) renameDurable(paths.signingKeyNext, paths.signingKey);
}
