import { decodeEvidence, type EvidenceBundle } from '../evidence/index.js';

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
  const decoded = decodeEvidence(json);
  if (!decoded.ok) return { ok: false, reason: decoded.reason === 'bad_envelope' ? 'outbox body is not a DSSE envelope' : `outbox envelope ${decoded.message}` };
  return { ok: true, bundle: decoded.bundle };
}
