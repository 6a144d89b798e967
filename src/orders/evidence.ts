import type { EvidenceSpec } from '../evidence/index.js';
import type { Admission } from './rate-limit.js';
import type { Rejection } from './verify.js';

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
