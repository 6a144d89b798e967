import * as z from 'zod';
import { getKv, setKv, type StateDb } from '../state/index.js';

const KV_KEY = 'orders.rejections';
const CountsSchema = z.record(z.string(), z.number().int().nonnegative());

/**
 * Every order the agent refused, by reason, for `status`. orders_seen holds only orders whose
 * signature verified (a forged or unreadable envelope has no order_id to key it), and the evidence
 * of rejections is rate limited, so neither counts them all.
 */
export function countRejection(db: StateDb, reason: string): void {
  db.transaction(() => {
    const counts = rejectionCounts(db);
    counts[reason] = (counts[reason] ?? 0) + 1;
    setKv(db, KV_KEY, JSON.stringify(counts));
  }).immediate();
}

export function rejectionCounts(db: StateDb): Record<string, number> {
  const stored = CountsSchema.safeParse(JSON.parse(getKv(db, KV_KEY) ?? '{}'));
  return stored.success ? { ...stored.data } : {};
}
