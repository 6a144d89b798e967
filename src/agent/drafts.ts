import { isoSeconds } from '../common/index.js';
import type { Config } from '../config/index.js';
import type { SystemFacts } from '../checks/index.js';
import { newBundleId, type EvidenceDraft, type EvidenceSpec } from '../evidence/index.js';

export function makeDraft(config: Config, facts: SystemFacts, input: EvidenceSpec): EvidenceDraft {
  return {
    bundle_id: newBundleId(),
    site_id: config.siteId,
    host_id: config.hostId,
    deployment_mode: config.deploymentMode,
    reseller_id: config.deploymentMode === 'reseller' ? config.resellerId : null,
    timestamp_start: isoSeconds(input.startedAt),
    timestamp_end: isoSeconds(input.endedAt),
    policy_version: config.policyVersion,
    ...facts,
    check: input.check,
    pre_state: input.preState ?? null,
    action_taken: [...(input.actions ?? [])],
    post_state: input.postState ?? null,
    rollback_available: input.rollbackAvailable ?? false,
    outcome: input.outcome,
    reason: input.reason ?? null,
    order_id: input.orderId ?? null,
    controls: [...(input.controls ?? [])],
  };
}
