import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EvidenceBundleSchema, type EvidenceBundle, type EvidenceDraft } from '../../src/evidence/index.js';
import { EVIDENCE_PAYLOAD_TYPE, verifyEnvelope, type Envelope, type PublicKey } from '../../src/crypto/index.js';
import type { ReferenceMcp } from '../../testing/index.js';

/** A valid draft with overridable fields, for tests that need many bundles quickly. */
export function sampleDraft(overrides: Partial<EvidenceDraft> = {}): EvidenceDraft {
  const t = new Date(Date.UTC(2026, 10, 23, 12, 0, 0)).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    bundle_id: randomUUID(),
    site_id: 'clinic-001',
    host_id: 'appliance-1',
    deployment_mode: 'direct',
    reseller_id: null,
    timestamp_start: t,
    timestamp_end: t,
    policy_version: '1.0',
    ruleset_hash: `sha256:${'a'.repeat(64)}`,
    nixos_revision: '26.05.20261101.5880666',
    derivation_digest: `sha256:${'b'.repeat(64)}`,
    ntp_offset_ms: 3,
    check: 'services',
    pre_state: { units: { 'sshd.service': 'active' } },
    action_taken: [],
    post_state: null,
    rollback_available: true,
    outcome: 'compliant',
    reason: null,
    order_id: null,
    controls: ['HIPAA 164.312(b)'],
    ...overrides,
  };
}

/**
 * The bundles the reference MCP stored, each verified with the agent's public key independently of
 * the agent's code path, in chain order.
 */
export function receivedBundles(mcp: Pick<ReferenceMcp, 'evidence'>, agentPublicKey: PublicKey): EvidenceBundle[] {
  return [...mcp.evidence().values()]
    .map((e) => {
      const v = verifyEnvelope(e.envelope, EVIDENCE_PAYLOAD_TYPE, [agentPublicKey]);
      if (!v.ok) throw new Error(`the MCP holds an unverifiable envelope: ${v.message}`);
      return EvidenceBundleSchema.parse(JSON.parse(v.payload.toString('utf8')));
    })
    .sort((a, b) => a.seq - b.seq);
}

/**
 * The envelope stored in `file` with its bundle rewritten by `edit` and its signatures kept, as
 * JSON text: what someone who can write the evidence directory but holds no key can produce.
 */
export function forgedEnvelope(file: string, edit: (bundle: Record<string, unknown>) => Record<string, unknown>): string {
  const env = JSON.parse(readFileSync(file, 'utf8')) as Envelope;
  const bundle = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Record<string, unknown>;
  return JSON.stringify({ ...env, payload: Buffer.from(JSON.stringify(edit(bundle))).toString('base64') });
}
