import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { inWindow, nextWindowOpen, parseWindow } from '../../src/heal/index.js';
import { seeded } from '../helpers/fuzz.js';

const at = (hhmm: string, day = 23) => Date.parse(`2026-11-${day}T${hhmm}:00Z`);

describe('maintenance window (HH:MM-HH:MM UTC)', () => {
  it('parses and rejects malformed windows', () => {
    expect(parseWindow('02:00-04:00')).toMatchObject({ startMin: 120, endMin: 240 });
    for (const bad of ['2:00-04:00', '02:00-24:00', '02:60-03:00', '02:00', '02:00-04:00 ', 'a-b']) {
      expect(() => parseWindow(bad), bad).toThrow(/HH:MM-HH:MM/);
    }
  });

  it('a same-day window: start inclusive, end exclusive', () => {
    const w = parseWindow('02:00-04:00');
    expect(inWindow(w, at('01:59'))).toBe(false);
    expect(inWindow(w, at('02:00'))).toBe(true);
    expect(inWindow(w, at('03:59') + 59_999)).toBe(true);
    expect(inWindow(w, at('04:00'))).toBe(false);
    expect(inWindow(w, at('12:00'))).toBe(false);
  });

  it('a window crossing midnight (22:30-01:15) is open late evening and early morning', () => {
    const w = parseWindow('22:30-01:15');
    expect(inWindow(w, at('22:29'))).toBe(false);
    expect(inWindow(w, at('22:30'))).toBe(true);
    expect(inWindow(w, at('23:59'))).toBe(true);
    expect(inWindow(w, at('00:00'))).toBe(true);
    expect(inWindow(w, at('01:14'))).toBe(true);
    expect(inWindow(w, at('01:15'))).toBe(false);
    expect(inWindow(w, at('12:00'))).toBe(false);
  });

  it('equal start and end means the whole day', () => {
    const w = parseWindow('03:00-03:00');
    expect([at('00:00'), at('03:00'), at('02:59'), at('23:59')].every((t) => inWindow(w, t))).toBe(true);
  });

  it('nextWindowOpen: now when open, later today, tomorrow, across midnight', () => {
    const w = parseWindow('02:00-04:00');
    expect(nextWindowOpen(w, at('03:00'))).toBe(at('03:00'));
    expect(nextWindowOpen(w, at('01:00'))).toBe(at('02:00'));
    expect(nextWindowOpen(w, at('12:00'))).toBe(at('02:00', 24));
    const night = parseWindow('23:00-01:00');
    expect(nextWindowOpen(night, at('12:00'))).toBe(at('23:00'));
    expect(nextWindowOpen(night, at('00:30', 24))).toBe(at('00:30', 24));
    expect(nextWindowOpen(night, at('01:00', 24))).toBe(at('23:00', 24));
  });

  it('property: nextWindowOpen is in the window, not before now, and no whole minute before it is open', () => {
    const hhmm = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
    fc.assert(
      fc.property(hhmm, hhmm, fc.integer({ min: at('00:00'), max: at('00:00') + 7 * 86_400_000 }), (a, b, now) => {
        const w = parseWindow(`${a}-${b}`);
        const open = nextWindowOpen(w, now);
        if (open < now || !inWindow(w, open) || open - now > 86_400_000) return false;
        for (let t = Math.ceil(now / 60_000) * 60_000; t < open; t += 60_000) if (inWindow(w, t)) return false;
        return true;
      }),
      seeded('maintenance window opening', { numRuns: 500 }),
    );
  });
});
