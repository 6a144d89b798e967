import { EVIDENCE_PAYLOAD_TYPE, openEnvelope, type Envelope } from '../crypto/index.js';
import { EvidenceBundleSchema, type EvidenceBundle } from './bundle.js';

export type DecodedEvidence =
  { ok: true; envelope: Envelope; bundle: EvidenceBundle } | { ok: false; reason: 'bad_envelope' | 'wrong_payload_type' | 'bad_payload'; message: string };

/**
 * The one decoder of an evidence envelope: DSSE shape and payload type (openEnvelope), then the
 * payload as an evidence bundle. Signatures are the caller's business (verify checks them, the
 * outputs relay what the agent itself signed). Messages say what failed, never echo the payload.
 */
export function decodeEvidence(input: unknown): DecodedEvidence {
  const opened = openEnvelope(input, EVIDENCE_PAYLOAD_TYPE);
  if (!opened.ok) return opened;
  const bundle = bundleOfPayload(opened.payload);
  return bundle.ok ? { ok: true, envelope: opened.envelope, bundle: bundle.bundle } : { ok: false, reason: 'bad_payload', message: bundle.message };
}

/** An envelope's payload bytes as an evidence bundle. */
export function bundleOfPayload(payload: Uint8Array): { ok: true; bundle: EvidenceBundle } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return { ok: false, message: 'payload is not JSON' };
  }
  const bundle = EvidenceBundleSchema.safeParse(json);
  if (!bundle.success) {
    const issue = bundle.error.issues[0];
    return { ok: false, message: `payload is not an evidence bundle (${issue?.path.join('.')}: ${issue?.message})` };
  }
  return { ok: true, bundle: bundle.data };
}

/**
 * What an envelope's payload claims, unverified and unvalidated: for naming a finding or reading a
 * field of an envelope this agent stored itself. Null when the payload is not a JSON object.
 */
export function claimedBundle(envelope: unknown): Partial<EvidenceBundle> | null {
  try {
    const payload = (envelope as { payload?: unknown } | null)?.payload;
    const json: unknown = JSON.parse(Buffer.from(String(payload), 'base64').toString('utf8'));
    return typeof json === 'object' && json !== null ? json : null;
  } catch {
    return null;
  }
}
