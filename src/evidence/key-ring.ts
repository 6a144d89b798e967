import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { formatPublicKey, parsePublicKey, type PublicKey } from '../crypto/index.js';
import type { EvidenceBundle } from './bundle.js';
import { claimedBundle } from './envelope.js';
import type { Finding } from './finding.js';

/** The check name of the bundle that introduces a new evidence key, signed by the key before it. */
export const KEY_ROTATION_CHECK = 'key_rotation';

/** The key a rotation bundle introduces (post_state.new_key, `name:base64`), or null for any other bundle. */
export function rotationKeyOf(bundle: Pick<EvidenceBundle, 'check' | 'post_state'>): PublicKey | null {
  if (bundle.check !== KEY_ROTATION_CHECK) return null;
  const text = bundle.post_state?.['new_key'];
  if (typeof text !== 'string') return null;
  try {
    return parsePublicKey(text, 'post_state.new_key');
  } catch {
    return null;
  }
}

/**
 * The keys an evidence chain is verified with, followed across rotations: it starts with the keys
 * the auditor gave, and a rotation bundle that verified under them replaces them with the key it
 * introduces. Feed it the envelopes of one appliance in seq order; a later envelope signed by a
 * retired key, or a rotation no trusted key signed, then fails verification.
 */
export class KeyRing {
  private trustedKeys: PublicKey[];

  constructor(initial: readonly PublicKey[]) {
    this.trustedKeys = [...initial];
  }

  trusted(): readonly PublicKey[] {
    return this.trustedKeys;
  }

  /** After a bundle verified under trusted(): follow it if it rotates the key. */
  observe(bundle: EvidenceBundle): void {
    const next = rotationKeyOf(bundle);
    if (next) this.trustedKeys = [next];
  }

  /** A signature finding on an envelope that claims to rotate the key says so: its key is not trusted. */
  explain(finding: Finding): Finding {
    if (finding.kind !== 'bad_signature' && finding.kind !== 'unknown_key') return finding;
    const claimed = rotationKeyOf(unverifiedPayload(finding.file));
    if (!claimed) return finding;
    return {
      ...finding,
      message: `${basename(finding.file)}: key rotation to ${formatPublicKey(claimed.keyId ?? '?', claimed.publicKey)} is not signed by the current evidence key (${finding.message.replace(/^[^:]*: /, '')}); the key it introduces is not trusted`,
    };
  }
}

/** What an envelope claims, before (and whether or not) its signature verifies: only to word a finding. */
function unverifiedPayload(file: string): Pick<EvidenceBundle, 'check' | 'post_state'> {
  let bundle: Partial<EvidenceBundle> | null;
  try {
    bundle = claimedBundle(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    bundle = null;
  }
  return { check: String(bundle?.check ?? ''), post_state: bundle?.post_state ?? null };
}
