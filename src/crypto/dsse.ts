import { createHash } from 'node:crypto';
import * as z from 'zod';
import { AgentError } from '../common/index.js';
import { decodeBase64Strict, isCanonicalBase64 } from './base64.js';
import { sign, verify } from './ed25519.js';
import type { PublicKey, SecretKey } from './keys.js';

export const ORDER_PAYLOAD_TYPE = 'application/vnd.compliance-agent.order+json;version=1';
export const EVIDENCE_PAYLOAD_TYPE = 'application/vnd.compliance-agent.evidence+json;version=1';
/** The MCP's countersignature on an evidence bundle it stored (docs/mcp-api.md). */
export const RECEIPT_PAYLOAD_TYPE = 'application/vnd.compliance-agent.receipt+json;version=1';

const b64 = z.string().refine(isCanonicalBase64, 'must be canonical standard base64 (padded, unused bits zero)');

export const EnvelopeSchema = z
  .object({
    payloadType: z.string().min(1).max(256),
    payload: b64,
    signatures: z
      .array(z.object({ keyid: z.string().max(128).default(''), sig: b64 }).strict())
      .min(1)
      .max(8),
  })
  .strict();

export type Envelope = z.infer<typeof EnvelopeSchema>;

/** DSSE pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

export function signEnvelope(payloadType: string, payload: Uint8Array, key: SecretKey): Envelope {
  const sig = sign(pae(payloadType, payload), key.seed);
  return {
    payloadType,
    payload: Buffer.from(payload).toString('base64'),
    signatures: [{ keyid: key.keyId, sig: Buffer.from(sig).toString('base64') }],
  };
}

export type OpenedEnvelope = { ok: true; envelope: Envelope; payload: Buffer } | { ok: false; reason: 'bad_envelope' | 'wrong_payload_type'; message: string };

/**
 * The one decoder of a DSSE envelope (orders, evidence, receipts): its shape (canonical base64,
 * one to eight signatures) and payload type, and the payload's bytes. Signatures are not checked
 * here: envelopeSigners and verifyEnvelope do that on top.
 */
export function openEnvelope(input: unknown, expectedType: string): OpenedEnvelope {
  const parsed = EnvelopeSchema.safeParse(input);
  if (!parsed.success) return { ok: false, reason: 'bad_envelope', message: 'not a DSSE envelope' };
  if (parsed.data.payloadType !== expectedType) {
    return { ok: false, reason: 'wrong_payload_type', message: `payloadType is not ${expectedType}` };
  }
  // The schema refused every non-canonical spelling, so this decode cannot fail.
  return { ok: true, envelope: parsed.data, payload: decodeBase64Strict(parsed.data.payload)! };
}

export type EnvelopeCheck =
  { ok: true; payload: Buffer; keyid: string } | { ok: false; reason: 'bad_envelope' | 'wrong_payload_type' | 'unknown_key' | 'bad_signature'; message: string };

export type EnvelopeSigners =
  | {
      ok: true;
      payload: Buffer;
      /** Distinct trusted keys with a valid signature, by name, in signature order. */
      signers: string[];
      /** Signatures naming a trusted key that do not verify (forged, or over another payload). */
      invalid: number;
      /** Signatures by no trusted key. */
      unknown: number;
    }
  | { ok: false; reason: 'bad_envelope' | 'wrong_payload_type'; message: string };

/**
 * Every signature of a DSSE envelope against the trusted keys. A trusted key counts once however
 * many signatures it made and however often it is listed (keys are compared by their bytes), so
 * a threshold counts distinct signers.
 */
export function envelopeSigners(input: unknown, expectedType: string, trusted: readonly PublicKey[]): EnvelopeSigners {
  const opened = openEnvelope(input, expectedType);
  if (!opened.ok) return opened;
  const { envelope: env, payload } = opened;
  // The schema refused every non-canonical spelling, so these decodes cannot fail.
  const message = pae(env.payloadType, payload);
  const seen = new Set<string>();
  const signers: string[] = [];
  let invalid = 0;
  let unknown = 0;
  for (const s of env.signatures) {
    const candidates = trusted.filter((k) => k.keyId === null || k.keyId === s.keyid);
    if (candidates.length === 0) {
      unknown++;
      continue;
    }
    const sig = decodeBase64Strict(s.sig)!;
    const good = candidates.find((k) => verify(sig, message, k.publicKey));
    if (!good) {
      invalid++;
      continue;
    }
    const id = Buffer.from(good.publicKey).toString('hex');
    if (!seen.has(id)) {
      seen.add(id);
      signers.push(good.keyId ?? (s.keyid || 'pem'));
    }
  }
  return { ok: true, payload, signers, invalid, unknown };
}

/**
 * Verify a DSSE envelope against trusted keys: at least one signature whose keyid names a trusted
 * key (or the trusted key is a nameless PEM key) verifies over the PAE.
 */
export function verifyEnvelope(input: unknown, expectedType: string, trusted: readonly PublicKey[]): EnvelopeCheck {
  const r = envelopeSigners(input, expectedType, trusted);
  if (!r.ok) return r;
  if (r.signers.length > 0) return { ok: true, payload: r.payload, keyid: r.signers[0]! };
  const env = input as Envelope;
  return r.invalid > 0
    ? { ok: false, reason: 'bad_signature', message: 'signature does not verify' }
    : { ok: false, reason: 'unknown_key', message: `no trusted key named ${env.signatures.map((s) => JSON.stringify(s.keyid)).join(', ')}` };
}

/** Add a signature to an envelope (co-signing): the payload and earlier signatures stay as they are. */
export function addSignature(env: Envelope, key: SecretKey): Envelope {
  const payload = decodeBase64Strict(env.payload);
  if (!payload) throw new AgentError('envelope_invalid', 'envelope payload is not canonical base64');
  const sig = sign(pae(env.payloadType, payload), key.seed);
  return { ...env, signatures: [...env.signatures, { keyid: key.keyId, sig: Buffer.from(sig).toString('base64') }] };
}

/** The bytes an envelope is hashed over for the evidence chain: compact JSON in fixed key order. */
export function canonicalEnvelope(env: Envelope): string {
  return JSON.stringify({
    payloadType: env.payloadType,
    payload: env.payload,
    signatures: env.signatures.map((s) => ({ keyid: s.keyid, sig: s.sig })),
  });
}

export function envelopeHash(env: Envelope): string {
  return `sha256:${createHash('sha256').update(canonicalEnvelope(env)).digest('hex')}`;
}
