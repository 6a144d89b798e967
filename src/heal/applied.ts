import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as z from 'zod';
import { AgentError, writeFileAtomic } from '../common/index.js';

const AppliedSchema = z.object({
  version: z.literal(1),
  entries: z.array(
    z.object({ request_id: z.string(), order_id: z.string(), applied_at: z.number(), expires_at: z.number(), done: z.boolean() }).strict(),
  ),
});
export type AppliedEntry = z.infer<typeof AppliedSchema>['entries'][number];

/** Entries outlive their order's expiry by this much, then go: an expired order fails re-verification anyway. */
const KEEP_AFTER_EXPIRY_MS = 7 * 24 * 3_600_000;

/**
 * The healer's own memory of what it acted on, independent of the agent's database: a request or
 * order applied once is never applied again. Unreadable means fail closed: act on nothing.
 */
export class AppliedRecord {
  private constructor(
    private readonly path: string,
    private entries: AppliedEntry[],
  ) {}

  static load(path: string): AppliedRecord {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new AppliedRecord(path, []);
      throw new AgentError('applied_read', `${path}: cannot read the healer's applied record (${(e as NodeJS.ErrnoException).code ?? 'error'}); refusing to act`);
    }
    let parsed;
    try {
      parsed = AppliedSchema.safeParse(JSON.parse(text));
    } catch {
      parsed = { success: false as const };
    }
    if (!parsed.success) throw new AgentError('applied_corrupt', `${path}: the healer's applied record is not valid; refusing to act until it is repaired`);
    return new AppliedRecord(path, parsed.data.entries);
  }

  /** `interrupted`: this request was started and never finished; `request`/`order`: already applied. */
  lookup(requestId: string, orderId: string): 'interrupted' | 'request' | 'order' | null {
    const same = this.entries.find((e) => e.request_id === requestId);
    if (same) return same.done ? 'request' : 'interrupted';
    return this.entries.some((e) => e.order_id === orderId) ? 'order' : null;
  }

  /** Durably record before acting, so a crash mid-action can never lead to a second run. */
  begin(entry: Omit<AppliedEntry, 'done'>, now: number): void {
    this.entries = [...this.entries.filter((e) => e.expires_at + KEEP_AFTER_EXPIRY_MS > now), { ...entry, done: false }];
    this.save();
  }

  /** Mark a begun request finished (its result is written); nothing to do for one never begun. */
  finish(requestId: string): void {
    if (!this.entries.some((e) => e.request_id === requestId && !e.done)) return;
    this.entries = this.entries.map((e) => (e.request_id === requestId ? { ...e, done: true } : e));
    this.save();
  }

  private save(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.path, JSON.stringify({ version: 1, entries: this.entries }) + '\n', 0o600);
  }
}
