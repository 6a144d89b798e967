import { createPublicKey, randomUUID, verify, type KeyObject } from 'node:crypto';
import {
  EVIDENCE_PAYLOAD_TYPE,
  EnvelopeSchema,
  canonicalEnvelope,
  envelopeHash,
  pae,
  publicKeyOf,
  randomSeed,
  type Envelope,
  type PublicKey,
  type SecretKey,
} from '../../src/crypto/index.js';
import { EvidenceBundleSchema, rotationKeyOf, signReceipt } from '../../src/evidence/index.js';
import { isoSeconds } from '../../src/common/index.js';

export interface StoredEvidence {
  readonly envelope: Envelope;
  readonly bundle: unknown;
  readonly receiptId: string;
  /** The countersigned receipt sent back (the same one again for a duplicate). */
  readonly receipt: Envelope;
  readonly receivedAt: number;
}

export type Acceptance =
  | { readonly ok: true; readonly bundleId: string; readonly receiptId: string; readonly receipt: Envelope; readonly duplicate: boolean }
  | { readonly ok: false; readonly status: 400 | 409; readonly error: string };

function freshReceiptKey(): SecretKey {
  const seed = randomSeed();
  return { keyId: 'mcp-receipts', seed, publicKey: publicKeyOf(seed) };
}

interface TrustedKey {
  readonly keyId: string | null;
  readonly key: KeyObject;
}

/**
 * The MCP side of evidence intake: verify, then store idempotently by bundle_id. Signatures are
 * checked with node:crypto (OpenSSL), not the agent's @noble signer, so the demo and tests prove
 * the envelopes verify under an independent implementation.
 */
export class EvidenceStore {
  private readonly keys: TrustedKey[] = [];

  /** `receiptKey`: the MCP's own Ed25519 key, which countersigns every receipt (a fresh one by default). */
  constructor(private readonly receiptKey: SecretKey = freshReceiptKey()) {}
  readonly byBundleId = new Map<string, StoredEvidence>();
  readonly counts = { posts: 0, unique: 0, duplicates: 0, rejected: 0 };

  registerKey(k: PublicKey): void {
    const x = Buffer.from(k.publicKey).toString('base64url');
    this.keys.push({ keyId: k.keyId, key: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' }) });
  }

  accept(input: unknown, now: number): Acceptance {
    this.counts.posts += 1;
    const result = this.check(input, now);
    if (!result.ok) this.counts.rejected += 1;
    else if (result.duplicate) this.counts.duplicates += 1;
    else this.counts.unique += 1;
    return result;
  }

  private check(input: unknown, now: number): Acceptance {
    const parsed = EnvelopeSchema.safeParse(input);
    if (!parsed.success) return { ok: false, status: 400, error: 'not a DSSE envelope' };
    const env = parsed.data;
    if (env.payloadType !== EVIDENCE_PAYLOAD_TYPE) return { ok: false, status: 400, error: `payloadType is not ${EVIDENCE_PAYLOAD_TYPE}` };
    const payload = Buffer.from(env.payload, 'base64');
    const unsigned = this.signatureProblem(env, payload);
    if (unsigned !== null) return { ok: false, status: 400, error: unsigned };
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      return { ok: false, status: 400, error: 'payload is not JSON' };
    }
    const bundle = EvidenceBundleSchema.safeParse(json);
    if (!bundle.success) {
      const issue = bundle.error.issues[0];
      return { ok: false, status: 400, error: `bundle ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}` };
    }
    const bundleId = bundle.data.bundle_id;
    const known = this.byBundleId.get(bundleId);
    if (known) {
      if (canonicalEnvelope(known.envelope) !== canonicalEnvelope(env)) {
        return { ok: false, status: 409, error: `bundle_id ${bundleId} was already received with different content` };
      }
      return { ok: true, bundleId, receiptId: known.receiptId, receipt: known.receipt, duplicate: true };
    }
    const receiptId = `rcpt-${randomUUID()}`;
    const b = bundle.data;
    const receipt = signReceipt(
      { receipt_id: receiptId, bundle_id: bundleId, envelope_hash: envelopeHash(env), site_id: b.site_id, host_id: b.host_id, seq: b.seq, received_at: isoSeconds(now) },
      this.receiptKey,
    );
    this.byBundleId.set(bundleId, { envelope: env, bundle: b, receiptId, receipt, receivedAt: now });
    // A rotation bundle verified under a registered key: the key it introduces signs what follows.
    const rotated = rotationKeyOf(b);
    if (rotated) this.registerKey(rotated);
    return { ok: true, bundleId, receiptId, receipt, duplicate: false };
  }

  /** Why no signature of `env` verifies under a registered key; null when one does. */
  private signatureProblem(env: Envelope, payload: Buffer): string | null {
    const message = pae(env.payloadType, payload);
    let sawKnownKey = false;
    for (const s of env.signatures) {
      const candidates = this.keys.filter((k) => k.keyId === null || k.keyId === s.keyid);
      if (candidates.length > 0) sawKnownKey = true;
      const sig = Buffer.from(s.sig, 'base64');
      if (sig.length !== 64) continue;
      if (candidates.some((k) => verify(null, message, k.key, sig))) return null;
    }
    return sawKnownKey ? 'signature does not verify' : `no registered agent key named ${env.signatures.map((s) => JSON.stringify(s.keyid)).join(', ')}`;
  }
}
