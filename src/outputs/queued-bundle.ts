import { EnvelopeSchema, EVIDENCE_PAYLOAD_TYPE } from '../crypto/index.js';
import { EvidenceBundleSchema, type EvidenceBundle } from '../evidence/index.js';

/**
 * The bundle inside an outbox row: the row body is the signed DSSE envelope JSON, the bundle its
 * base64 payload. A body that does not decode never will, so callers dead-letter it with the reason.
 */
export function decodeQueuedBundle(body: string): { ok: true; bundle: EvidenceBundle } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'outbox body is not JSON' };
  }
  const env = EnvelopeSchema.safeParse(json);
  if (!env.success) return { ok: false, reason: 'outbox body is not a DSSE envelope' };
  if (env.data.payloadType !== EVIDENCE_PAYLOAD_TYPE) return { ok: false, reason: `outbox envelope payloadType is not ${EVIDENCE_PAYLOAD_TYPE}` };
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(env.data.payload, 'base64').toString('utf8'));
  } catch {
    return { ok: false, reason: 'outbox envelope payload is not JSON' };
  }
  const bundle = EvidenceBundleSchema.safeParse(payload);
  if (!bundle.success) return { ok: false, reason: `outbox envelope payload is not an evidence bundle (${bundle.error.issues[0]?.path.join('.') ?? '?'})` };
  return { ok: true, bundle: bundle.data };
}
