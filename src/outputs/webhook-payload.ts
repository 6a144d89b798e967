import type { EvidenceBundle } from '../evidence/index.js';
import { summarize, type EvidenceSummary } from './summary.js';

export const WEBHOOK_EVENT_TYPE = 'compliance.evidence';

/** The Standard Webhooks payload shape the spec recommends: type, timestamp of the event, data. */
export interface WebhookPayload {
  readonly type: typeof WEBHOOK_EVENT_TYPE;
  readonly timestamp: string;
  readonly data: EvidenceSummary;
}

export function webhookPayload(bundle: EvidenceBundle): WebhookPayload {
  return { type: WEBHOOK_EVENT_TYPE, timestamp: bundle.timestamp_end, data: summarize(bundle) };
}
