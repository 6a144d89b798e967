import { AgentError } from '../common/index.js';
import { WINDOW_RE } from '../config/index.js';

/** A daily maintenance window in UTC minutes of the day, [start, end). */
export interface MaintenanceWindow {
  readonly startMin: number;
  readonly endMin: number;
  readonly text: string;
}

const DAY_MIN = 24 * 60;
const MIN_MS = 60_000;
const DAY_MS = DAY_MIN * MIN_MS;

/**
 * Parse `HH:MM-HH:MM` (UTC). An end before the start crosses midnight ("22:00-02:00"); equal
 * start and end means the whole day, the only reading in which such a window is not useless.
 */
export function parseWindow(text: string): MaintenanceWindow {
  const m = WINDOW_RE.exec(text);
  if (!m) throw new AgentError('window_invalid', `maintenance window ${JSON.stringify(text)} must be HH:MM-HH:MM (UTC, 24h)`);
  return { startMin: Number(m[1]) * 60 + Number(m[2]), endMin: Number(m[3]) * 60 + Number(m[4]), text };
}

function minuteOfDay(nowMs: number): number {
  return Math.floor((((nowMs % DAY_MS) + DAY_MS) % DAY_MS) / MIN_MS);
}

export function inWindow(w: MaintenanceWindow, nowMs: number): boolean {
  const m = minuteOfDay(nowMs);
  if (w.startMin === w.endMin) return true;
  if (w.startMin < w.endMin) return m >= w.startMin && m < w.endMin;
  return m >= w.startMin || m < w.endMin;
}

/** When the window next opens: `nowMs` itself when it is open now. */
export function nextWindowOpen(w: MaintenanceWindow, nowMs: number): number {
  if (inWindow(w, nowMs)) return nowMs;
  const dayStart = nowMs - (((nowMs % DAY_MS) + DAY_MS) % DAY_MS);
  const todayOpen = dayStart + w.startMin * MIN_MS;
  return todayOpen > nowMs ? todayOpen : todayOpen + DAY_MS;
}
