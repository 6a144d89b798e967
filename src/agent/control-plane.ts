import { isoSeconds } from '../common/index.js';
import type { EvidenceSpec } from '../evidence/index.js';
import { controlPlaneView, WATCH_SINCE, type ControlPlaneView } from '../observe/index.js';
import { getKv, setKv, type StateDb } from '../state/index.js';

/** Evidence about the control plane itself: monitoring of the relay and of the audit trail. */
const CONTROLS = ['HIPAA 164.308(a)(1)(ii)(D)', 'HIPAA 164.312(b)', 'SOC 2 CC7.2'];

const STALE = 'control_plane.stale';
const STALE_ALERT_AT = 'control_plane.alert_at';
const BAD_RECEIPT = 'mcp.bad_receipt';
const BAD_RECEIPT_ALERT_AT = 'mcp.bad_receipt_alert_at';

/**
 * Signed liveness: an MCP answering 204 forever looks like "no orders", so the agent compares the
 * newest MSP-signed time it accepted with controlPlaneMaxAge. Stale raises one `control_plane`
 * `failed` bundle (again every heartbeatInterval while it lasts), fresh again one `compliant`
 * bundle. `record` runs in the transaction that chains the bundle, like the MCP outage alert.
 */
export function assessControlPlane(db: StateDb, now: number, maxAgeMs: number, heartbeatMs: number): { spec: EvidenceSpec | null; view: ControlPlaneView; record: () => void } {
  const firstWatch = getKv(db, WATCH_SINCE) === null;
  const view = controlPlaneView(db, now, maxAgeMs);
  const wasStale = getKv(db, STALE) === '1';
  const lastAlertAt = Number(getKv(db, STALE_ALERT_AT) ?? '0');
  const watch = (): void => {
    if (firstWatch) setKv(db, WATCH_SINCE, String(now));
  };
  if (view.stale) {
    // Either way round, so a stale period spanning a backward clock step keeps re-alerting.
    if (wasStale && Math.abs(now - lastAlertAt) < heartbeatMs) return { spec: null, view, record: watch };
    const newest =
      view.signedAt === null
        ? `no MSP-signed order accepted since this appliance started watching at ${isoSeconds(view.watchSince!)}`
        : `the newest MSP-signed order was issued ${isoSeconds(view.signedAt)}`;
    return {
      spec: {
        check: 'control_plane',
        outcome: 'failed',
        startedAt: now,
        endedAt: now,
        controls: CONTROLS,
        reason: `control_plane_stale: ${newest}, ${Math.round(view.ageMs! / 3_600_000)} h ago, over controlPlaneMaxAge ${maxAgeMs / 1000} s; the MCP may be withholding orders`,
      },
      view,
      record: () => {
        watch();
        setKv(db, STALE, '1');
        setKv(db, STALE_ALERT_AT, String(now));
      },
    };
  }
  if (wasStale) {
    return {
      spec: {
        check: 'control_plane',
        outcome: 'compliant',
        startedAt: now,
        endedAt: now,
        controls: CONTROLS,
        reason: `control plane fresh again: an MSP-signed order issued ${isoSeconds(view.signedAt ?? now)} was accepted`,
      },
      view,
      record: () => setKv(db, STALE, '0'),
    };
  }
  return { spec: null, view, record: watch };
}

/** Called by the MCP delivery when the MCP answered with receipts that do not acknowledge what was sent. */
export function noteBadReceipt(db: StateDb, now: number, message: string): void {
  setKv(db, BAD_RECEIPT, JSON.stringify({ at: now, message }));
}

/**
 * A receipt that names another bundle, another hash, or is not countersigned by a pinned key is a
 * failed delivery (the bundle stays queued and is retried); the first one since the last alert
 * raises one `mcp` `failed` bundle, at most one per heartbeatInterval.
 */
export function assessReceipts(db: StateDb, now: number, heartbeatMs: number): { spec: EvidenceSpec | null; record: () => void } {
  const text = getKv(db, BAD_RECEIPT);
  const lastAlertAt = Number(getKv(db, BAD_RECEIPT_ALERT_AT) ?? '0');
  const bad = text ? (JSON.parse(text) as { at: number; message: string }) : null;
  const none = { spec: null, record: () => undefined };
  if (!bad || bad.at <= lastAlertAt) return none;
  if (lastAlertAt !== 0 && Math.abs(now - lastAlertAt) < heartbeatMs) return none;
  return {
    spec: {
      check: 'mcp',
      outcome: 'failed',
      startedAt: bad.at,
      endedAt: now,
      controls: ['HIPAA 164.312(c)(1)', 'SOC 2 CC7.2'],
      reason: `MCP receipt refused, evidence not acknowledged (kept, retried, never pruned): ${bad.message}`,
    },
    record: () => setKv(db, BAD_RECEIPT_ALERT_AT, String(now)),
  };
}
