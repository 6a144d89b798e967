import { afterAll, describe, expect, it } from 'vitest';
import { openStateDb, stateLayout } from '../../src/state/index.js';
import { admitRejection, rejectionEvidence, verifyOrder, readOnlyOrderState } from '../../src/orders/index.js';
import { EvidenceBundleSchema } from '../../src/evidence/index.js';
import { tempDir } from '../helpers/tmp.js';
import { sampleDraft } from '../helpers/evidence.js';
import { NOW, context, makeKey, orderPayload, signPayload } from './fixtures.js';

const tmp = tempDir('ca-ratelimit-');
afterAll(() => tmp.cleanup());

describe('rejection evidence rate limit (token bucket in kv)', () => {
  it('lets a burst through, then suppresses, then reports the suppressed count with the next emitted one', () => {
    const db = openStateDb(stateLayout(`${tmp.path}/a`).db);
    const limit = { perHour: 10, burst: 20 };
    const admissions = Array.from({ length: 1000 }, (_, i) => admitRejection(db, NOW + i, limit));
    expect(admissions.filter((a) => a.emit)).toHaveLength(20);
    expect(admissions.slice(0, 20).every((a) => a.emit && a.suppressed === 0)).toBe(true);
    // One token refills every 6 minutes at 10 per hour.
    const next = admitRejection(db, NOW + 1000 + 360_000, limit);
    expect(next).toEqual({ emit: true, suppressed: 980 });
    expect(admitRejection(db, NOW + 1000 + 360_001, limit)).toEqual({ emit: false, suppressed: 0 });
    db.close();
  });

  it('survives a restart: reopening the database does not refill the bucket', () => {
    const path = stateLayout(`${tmp.path}/b`).db;
    const limit = { perHour: 1, burst: 2 };
    let db = openStateDb(path);
    expect(admitRejection(db, NOW, limit).emit).toBe(true);
    expect(admitRejection(db, NOW, limit).emit).toBe(true);
    expect(admitRejection(db, NOW, limit).emit).toBe(false);
    db.close();
    db = openStateDb(path);
    expect(admitRejection(db, NOW + 10, limit)).toEqual({ emit: false, suppressed: 0 });
    expect(admitRejection(db, NOW + 3_600_000, limit)).toEqual({ emit: true, suppressed: 2 });
    db.close();
  });

  it('a clock stepping backwards refills nothing', () => {
    const db = openStateDb(stateLayout(`${tmp.path}/c`).db);
    const limit = { perHour: 10, burst: 1 };
    expect(admitRejection(db, NOW, limit).emit).toBe(true);
    expect(admitRejection(db, NOW - 86_400_000, limit).emit).toBe(false);
    expect(admitRejection(db, NOW + 1000, limit).emit).toBe(false);
    db.close();
  });

  it('a hostile relay sending 2,000 forged orders in an hour produces at most the burst plus the refill in bundles', () => {
    const db = openStateDb(stateLayout(`${tmp.path}/d`).db);
    const attacker = makeKey('attacker');
    const ctx = context([makeKey('msp').pub]);
    let emitted = 0;
    for (let i = 0; i < 2000; i++) {
      const now = NOW + i * 1800;
      const d = verifyOrder(signPayload(orderPayload({}, now), attacker.secret), { ...ctx, now }, readOnlyOrderState(null));
      expect(d.decision).toBe('rejected');
      if (admitRejection(db, now).emit) emitted++;
    }
    expect(emitted).toBeLessThanOrEqual(20 + 10);
    expect(emitted).toBeGreaterThanOrEqual(20);
    db.close();
  });
});

describe('rejectionEvidence', () => {
  it('is a rejected bundle for check "order" with the reason, the order_id and no action', () => {
    const spec = rejectionEvidence(
      { decision: 'rejected', reason: 'wrong_host', message: 'order is for host "x"', orderId: '0b7c4c59-4b8a-4a8e-9d43-2f7d1c5c7a10' },
      { emit: true, suppressed: 3 },
      NOW,
    );
    expect(spec).toMatchObject({ check: 'order', outcome: 'rejected', actions: [], orderId: '0b7c4c59-4b8a-4a8e-9d43-2f7d1c5c7a10' });
    expect(spec.reason).toMatch(/^wrong_host: order is for host "x" \(3 earlier rejection\(s\) not reported: rate limit\)$/);
    // The spec maps onto a valid bundle.
    const draft = sampleDraft({ check: spec.check, outcome: spec.outcome, reason: spec.reason ?? null, order_id: spec.orderId ?? null, action_taken: [] });
    expect(EvidenceBundleSchema.safeParse({ ...draft, version: '1.0', agent_version: '0.1.0', seq: 1, prev_hash: null }).success).toBe(true);
  });
});
