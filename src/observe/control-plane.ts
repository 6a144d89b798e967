import { newestSignedAt } from '../orders/index.js';
import { getKv, type StateDb } from '../state/index.js';

/** kv key: when this appliance started watching the control plane (its first cycle). */
export const WATCH_SINCE = 'control_plane.watch_since';

export interface ControlPlaneView {
  /** Newest issued_at of an accepted (MSP-signed) order, heartbeats included; null: none yet. */
  readonly signedAt: number | null;
  /** When this appliance started watching (its first cycle): the reference before any order. */
  readonly watchSince: number | null;
  readonly ageMs: number | null;
  readonly maxAgeMs: number;
  readonly stale: boolean;
}

/** The control plane's freshness from the state database: what `status` and the metrics show. */
export function controlPlaneView(db: StateDb, now: number, maxAgeMs: number): ControlPlaneView {
  const signedAt = newestSignedAt(db);
  const since = getKv(db, WATCH_SINCE);
  const watchSince = since === null ? null : Number(since);
  const reference = signedAt ?? watchSince;
  const ageMs = reference === null ? null : Math.max(0, now - reference);
  return { signedAt, watchSince, ageMs, maxAgeMs, stale: ageMs !== null && ageMs > maxAgeMs };
}
