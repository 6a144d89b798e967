import { describeError } from '../common/index.js';
import type { Outbox } from './outbox.js';
import type { Deliver, DeliveryResult, Destination } from './types.js';

export interface FlushOptions {
  readonly batchSize: number;
  readonly now: () => number;
  readonly signal?: AbortSignal;
  /** Stop after this many items have been handed to `deliver`. */
  readonly maxItems?: number;
  /**
   * The cycle's time budget: checked between batches and handed to `deliver`, which aborts the
   * exchange in flight when it fires (that batch is then a retryable failure).
   */
  readonly budget?: AbortSignal;
}

export interface FlushReport {
  readonly delivered: number;
  /** Items put back for a later attempt (only the first failed one is charged an attempt). */
  readonly retried: number;
  readonly dead: number;
  readonly stoppedBy: 'drained' | 'not_due' | 'retry' | 'aborted' | 'max_items' | 'budget';
}

/**
 * Drain one destination in enqueue order: lease a batch, deliver it, record every result in one
 * commit, repeat. The first retryable failure ends the flush so nothing overtakes it; the items
 * after it in the batch are released uncharged and wait behind it. A `deliver` that throws counts
 * as a retryable failure of the whole batch. An abort is honoured between batches: the results of
 * a delivery already made are always recorded.
 */
export async function flushDestination(outbox: Outbox, destination: Destination, deliver: Deliver, options: FlushOptions): Promise<FlushReport> {
  const max = options.maxItems ?? Infinity;
  let delivered = 0;
  let retried = 0;
  let dead = 0;
  let handed = 0;
  const report = (stoppedBy: FlushReport['stoppedBy']): FlushReport => ({ delivered, retried, dead, stoppedBy });

  for (;;) {
    if (options.signal?.aborted) return report('aborted');
    if (options.budget?.aborted) return report('budget');
    if (handed >= max) return report('max_items');
    const items = outbox.lease(destination, Math.min(options.batchSize, max - handed), options.now());
    if (items.length === 0) return report(outbox.pendingCount(destination, options.now()) === 0 ? 'drained' : 'not_due');
    handed += items.length;

    let results: DeliveryResult[];
    try {
      results = await deliver(items, options.budget);
      if (results.length !== items.length) {
        results = items.map(() => ({ kind: 'retry', error: `${destination} delivery returned ${results.length} result(s) for ${items.length} item(s)` }));
      }
    } catch (e) {
      const error = describeError(e);
      results = items.map(() => ({ kind: 'retry', error }));
    }

    const now = options.now();
    let sawRetry = false;
    outbox.batch(() => {
      items.forEach((item, i) => {
        const r = results[i]!;
        if (r.kind === 'ok') {
          outbox.ack(item.id, r.receiptId, now, r.receipt);
          delivered++;
        } else if (r.kind === 'reject') {
          outbox.dead(item.id, r.reason, now);
          dead++;
        } else {
          if (sawRetry) outbox.release(item.id);
          else outbox.retry(item.id, r.error, now);
          sawRetry = true;
          retried++;
        }
      });
    });
    if (sawRetry) return report('retry');
  }
}
