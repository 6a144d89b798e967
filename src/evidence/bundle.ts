import * as z from 'zod';

export const OUTCOMES = ['compliant', 'drift_detected', 'healed', 'deferred', 'failed', 'rolled_back', 'rejected'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const ActionTakenSchema = z
  .object({
    /** The binary and its arguments, from the fixed repertoire. */
    command: z.string(),
    args: z.array(z.string()),
    status: z.enum(['ok', 'nonzero', 'timeout', 'missing', 'error', 'skipped']),
    exit_code: z.number().int().nullable(),
    duration_ms: z.number().nonnegative(),
  })
  .strict();
export type ActionTaken = z.infer<typeof ActionTakenSchema>;

const sha256Ref = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const isoTime = z.iso.datetime({ offset: false });

/** The evidence bundle of docs/evidence.md. */
export const EvidenceBundleSchema = z
  .object({
    version: z.literal('1.0'),
    bundle_id: z.uuid(),
    site_id: z.string(),
    host_id: z.string(),
    deployment_mode: z.enum(['reseller', 'direct']),
    reseller_id: z.string().nullable(),
    timestamp_start: isoTime,
    timestamp_end: isoTime,
    policy_version: z.string(),
    ruleset_hash: sha256Ref.nullable(),
    nixos_revision: z.string().nullable(),
    derivation_digest: sha256Ref.nullable(),
    ntp_offset_ms: z.number().nullable(),
    /**
     * A check name, `order` for an order decision, `mcp` and `delivery` for the agent's alerts about
     * the MCP and about evidence delivery, `control_plane` for signed liveness (control_plane_stale),
     * `chain` for the checkpoint a prune chains.
     */
    check: z.string(),
    pre_state: z.record(z.string(), z.unknown()).nullable(),
    action_taken: z.array(ActionTakenSchema),
    post_state: z.record(z.string(), z.unknown()).nullable(),
    rollback_available: z.boolean(),
    outcome: z.enum(OUTCOMES),
    reason: z.string().nullable(),
    agent_version: z.string(),
    order_id: z.string().nullable(),
    controls: z.array(z.string()),
    seq: z.number().int().positive(),
    prev_hash: sha256Ref.nullable(),
  })
  .strict();

export type EvidenceBundle = z.infer<typeof EvidenceBundleSchema>;

/** What a stage hands to the evidence stage; seq and prev_hash are assigned when chained. */
export type EvidenceDraft = Omit<EvidenceBundle, 'seq' | 'prev_hash' | 'version' | 'agent_version'>;

/**
 * What a stage knows about a bundle it wants written; the agent adds site, host, mode and system
 * facts (makeDraft) and the evidence stage adds seq and prev_hash.
 */
export interface EvidenceSpec {
  readonly check: string;
  readonly outcome: Outcome;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly controls?: readonly string[];
  readonly preState?: Record<string, unknown> | null;
  readonly postState?: Record<string, unknown> | null;
  readonly actions?: readonly ActionTaken[];
  readonly rollbackAvailable?: boolean;
  readonly reason?: string | null;
  readonly orderId?: string | null;
}
