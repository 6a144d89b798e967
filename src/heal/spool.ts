import * as z from 'zod';
import { oneLine } from '../common/index.js';
import { EnvelopeSchema } from '../crypto/index.js';
import { ActionTakenSchema } from '../evidence/index.js';
import { HealActionSchema } from './actions.js';

const isoTime = z.iso.datetime();
/** The largest request or result file either side reads. */
export const MAX_SPOOL_FILE = 256 * 1024;
const MAX_REASON = 4096;

export const HealRequestSchema = z
  .object({
    version: z.literal(1),
    request_id: z.uuid(),
    created_at: isoTime,
    /** The order exactly as the MCP relayed it: the healer verifies this signature itself. */
    envelope: EnvelopeSchema,
    plan: z.object({ order_id: z.uuid(), actions: z.array(HealActionSchema).min(1).max(64) }).strict(),
  })
  .strict();
export type HealRequest = z.infer<typeof HealRequestSchema>;

const HEAL_OUTCOMES = ['healed', 'rolled_back', 'failed', 'deferred', 'rejected', 'compliant'] as const;

export const HealResultSchema = z
  .object({
    version: z.literal(1),
    /** The result file's own name: several results may answer one request (deferred, then applied). */
    result_id: z.uuid(),
    /** null for what the healer reports on its own (its unit failed). */
    request_id: z.uuid().nullable(),
    order_id: z.uuid().nullable(),
    /** The evidence `check` field: the checks the order is about, or `order`. */
    check: z.string().max(256),
    outcome: z.enum(HEAL_OUTCOMES),
    reason: z.string().max(MAX_REASON).nullable(),
    started_at: isoTime,
    finished_at: isoTime,
    pre_state: z.record(z.string(), z.unknown()).nullable(),
    action_taken: z.array(ActionTakenSchema),
    post_state: z.record(z.string(), z.unknown()).nullable(),
    rollback_available: z.boolean(),
    controls: z.array(z.string()),
  })
  .strict();
export type HealResult = z.infer<typeof HealResultSchema>;

const UUID_JSON = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json$/;

/** `<uuid>.json` in lower case: every other name in the drop box or results is not an entry. */
export function entryId(name: string): string | null {
  return UUID_JSON.test(name) ? name.slice(0, -5) : null;
}

/**
 * A reason for a result or a log line: one line, bounded, control characters gone. Everything
 * root writes or prints about a request goes through here, so no request can add a line.
 */
export function safeReason(text: string): string {
  return oneLine(text, MAX_REASON - 8);
}

/**
 * Zod issues as text that names only the schema's own fields: unknown keys are counted, not
 * echoed, and a path segment that is not a plain identifier or index is shown as `?`.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], max = 5): string {
  const seg = (p: PropertyKey) => (typeof p === 'number' ? String(p) : typeof p === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(p) ? p : '?');
  const lines = issues.slice(0, max).map((i) => {
    const where = i.path.length ? i.path.map(seg).join('.') : '(root)';
    const what = i.code === 'unrecognized_keys' ? `${i.keys.length} unknown field(s)` : i.code === 'invalid_type' ? `expected ${i.expected}` : i.code;
    return `${where}: ${what}`;
  });
  return safeReason(lines.join('; ') + (issues.length > max ? `; and ${issues.length - max} more` : ''));
}
