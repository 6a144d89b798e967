import { createHash } from 'node:crypto';
import * as z from 'zod';

/**
 * The wire contract of POST /enroll, POST /renew and GET /identity, shared by the agent and the
 * reference MCP. Refusals are JSON `{"error": "...", "code": "..."}` with these codes.
 */
export const REFUSAL_CODES = {
  /** 401 on /enroll: no such token (never issued, or revoked by the MSP). */
  token_unknown: 'token_unknown',
  /** 401 on /enroll: the token was already used by another appliance key. */
  token_used: 'token_used',
  /** 401 on /enroll: the token's lifetime is over. */
  token_expired: 'token_expired',
  /** 403 on /enroll: the token was issued for another site. */
  token_wrong_site: 'token_wrong_site',
  /** 401 on any mTLS route: the client certificate has expired. */
  certificate_expired: 'certificate_expired',
  /** 403 on any mTLS route: the MSP revoked this appliance's identity. */
  identity_revoked: 'identity_revoked',
} as const;

const pem = (label: string) =>
  z
    .string()
    .max(16_384)
    .regex(new RegExp(`^-----BEGIN ${label}-----\\n[A-Za-z0-9+/=\\n]+-----END ${label}-----\\n?$`), `must be a PEM ${label.toLowerCase()}`);

export const EnrollRequestSchema = z
  .object({
    token: z.string().min(16).max(512),
    site_id: z.string().min(1).max(128),
    host_id: z.string().min(1).max(128),
    machine_id: z.string().regex(/^hmac-sha256:[0-9a-f]{64}$/),
    agent_version: z.string().min(1).max(64),
    csr: pem('CERTIFICATE REQUEST'),
    /** name:base64 of the Ed25519 evidence key. */
    evidence_public_key: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}:[A-Za-z0-9+/]{43}=$/),
  })
  .strict();
export type EnrollRequest = z.infer<typeof EnrollRequestSchema>;

export const RenewRequestSchema = z.object({ site_id: z.string().min(1).max(128), host_id: z.string().min(1).max(128), csr: pem('CERTIFICATE REQUEST') }).strict();

export const CertificateResponseSchema = z.object({ certificate: pem('CERTIFICATE') });

export const RefusalSchema = z.object({ error: z.string(), code: z.string().optional() });

/** What identifies an evidence key in evidence: `sha256:` of its 32 raw bytes. */
export function keyFingerprint(publicKey: Uint8Array): string {
  return `sha256:${createHash('sha256').update(publicKey).digest('hex')}`;
}

/** A stored one-time token is only ever its hash. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
