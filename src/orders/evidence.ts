import type { ActionTaken, Outcome } from '../evidence/index.js';
import type { Admission } from './rate-limit.js';
import type { Rejection } from './verify.js';

/**
 * What orders/ and heal/ know about a bundle; the agent adds the site, host and system facts and
 * turns it into an EvidenceDraft (same shape as the agent's DraftInput).
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

/** Order decisions are evidence of integrity, authentication and change control. */
export const ORDER_CONTROLS: readonly string[] = ['HIPAA 164.312(c)(1)', 'HIPAA 164.312(d)', 'SOC 2 CC6.1', 'SOC 2 CC8.1'];

/** The `rejected` bundle for a refused order: check `order`, the reason, no action taken. */
export function rejectionEvidence(rejection: Rejection, admission: Admission, now: number): EvidenceSpec {
  const unreported = admission.suppressed > 0 ? ` (${admission.suppressed} earlier rejection(s) not reported: rate limit)` : '';
  return {
    check: 'order',
    outcome: 'rejected',
    startedAt: now,
    endedAt: now,
    controls: ORDER_CONTROLS,
    actions: [],
    reason: `${rejection.reason}: ${rejection.message}${unreported}`,
    orderId: rejection.orderId,
  };
}
