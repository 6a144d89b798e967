import * as z from 'zod';
import { getKv, setKv, type StateDb } from '../state/index.js';

export interface RateLimit {
  /** Tokens added per hour. */
  readonly perHour: number;
  /** Bucket size: how many rejections may be reported back to back. */
  readonly burst: number;
}

export const DEFAULT_REJECTION_LIMIT: RateLimit = { perHour: 10, burst: 20 };

const KV_KEY = 'orders.rejection_bucket';
const BucketSchema = z.object({ tokens: z.number(), at: z.number(), suppressed: z.number().int().nonnegative() });
type Bucket = z.infer<typeof BucketSchema>;

export interface Admission {
  /** Whether this rejection becomes evidence. */
  readonly emit: boolean;
  /** When emitting: rejections suppressed since the last one emitted, to be reported with it. */
  readonly suppressed: number;
}

/**
 * A token bucket over rejection evidence, persisted in kv so restarts do not refill it: a hostile
 * MCP can send endless junk, but the queue only grows by `perHour` bundles an hour, and the next
 * emitted rejection says how many went unreported.
 */
export function admitRejection(db: StateDb, now: number, limit: RateLimit = DEFAULT_REJECTION_LIMIT): Admission {
  return db
    .transaction((): Admission => {
      const stored = BucketSchema.safeParse(JSON.parse(getKv(db, KV_KEY) ?? 'null'));
      const bucket: Bucket = stored.success ? stored.data : { tokens: limit.burst, at: now, suppressed: 0 };
      // A clock stepping backwards refills nothing.
      const elapsed = Math.max(0, now - bucket.at);
      const tokens = Math.min(limit.burst, bucket.tokens + (elapsed / 3_600_000) * limit.perHour);
      let admission: Admission;
      let next: Bucket;
      if (tokens >= 1) {
        admission = { emit: true, suppressed: bucket.suppressed };
        next = { tokens: tokens - 1, at: Math.max(now, bucket.at), suppressed: 0 };
      } else {
        admission = { emit: false, suppressed: 0 };
        next = { tokens, at: Math.max(now, bucket.at), suppressed: bucket.suppressed + 1 };
      }
      setKv(db, KV_KEY, JSON.stringify(next));
      return admission;
    })
    .immediate();
}
