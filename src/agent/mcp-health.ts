import type { StateDb } from '../state/index.js';
import { getKv, setKv } from '../state/index.js';

export interface PollRecord {
  readonly at: number;
  readonly ok: boolean;
  readonly error: string | null;
  readonly code: string | null;
}

/**
 * Fail closed with an alert: when the MCP becomes unreachable, or the reason
 * changes, or heartbeatInterval passes while it stays unreachable, one `failed` alert bundle is due.
 * Recovery is recorded too, so the evidence shows the outage's end. Nothing is written here:
 * `record` stores the poll and the alert time, and the agent runs it in the transaction that chains
 * the alert, so a crash or a full disk can never mark an alert as sent without its evidence.
 */
export function assessPoll(db: StateDb, poll: PollRecord, heartbeatMs: number): { alert: 'outage' | 'recovered' | null; record: () => void } {
  const prevText = getKv(db, 'last_poll');
  const prev = prevText ? (JSON.parse(prevText) as PollRecord) : null;
  const lastAlertAt = Number(getKv(db, 'last_mcp_alert_at') ?? '0');
  const recordPoll = (): void => setKv(db, 'last_poll', JSON.stringify(poll));
  if (!poll.ok) {
    const changed = !prev || prev.ok || prev.code !== poll.code;
    // Either way round, so an outage spanning a backward clock step keeps re-alerting.
    if (changed || Math.abs(poll.at - lastAlertAt) >= heartbeatMs) {
      return {
        alert: 'outage',
        record: () => {
          recordPoll();
          setKv(db, 'last_mcp_alert_at', String(poll.at));
        },
      };
    }
    return { alert: null, record: recordPoll };
  }
  return { alert: prev && !prev.ok ? 'recovered' : null, record: recordPoll };
}
