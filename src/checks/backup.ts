import type { Check } from './types.js';
import { startResult } from './result.js';

const HOUR_MS = 3_600_000;

const hours = (ms: number): number => Math.round((ms / HOUR_MS) * 10) / 10;

/**
 * Age of the last successful backup: the stamp file's mtime (the backup unit touches it when it
 * succeeds) against maxAgeHours. Heals by starting the backup unit, which is not disruptive.
 */
export const backupCheck: Check = {
  name: 'backup',
  controls: ['HIPAA 164.308(a)(7)(ii)(A)', 'HIPAA 164.310(d)(2)(iv)', 'SOC 2 A1.2', 'SOC 2 CC7.5'],
  heal: { kind: 'start_backup' },
  async run(ctx) {
    const { stampFile, maxAgeHours, unit } = ctx.baseline.backup;
    const done = startResult('backup', ctx, { stampFile, maxAgeHours, unit });
    const st = await ctx.host.stat(stampFile);
    if (!st) return done('drift', `no backup stamp at ${stampFile}: no successful backup recorded`, { stampFile, lastSuccessAt: null, ageHours: null });
    const ageMs = ctx.host.now() - st.mtimeMs;
    const observed = { stampFile, lastSuccessAt: new Date(st.mtimeMs).toISOString(), ageHours: hours(ageMs) };
    if (-ageMs > ctx.config.ntpMaxSkewMs) {
      return done('error', `backup stamp ${stampFile} is ${hours(-ageMs)} h in the future: the clock or the stamp is wrong`, observed);
    }
    if (ageMs > maxAgeHours * HOUR_MS) {
      return done('drift', `last successful backup ${hours(ageMs)} h ago, older than the ${maxAgeHours} h limit`, observed);
    }
    return done('compliant', `last successful backup ${hours(Math.max(0, ageMs))} h ago (limit ${maxAgeHours} h)`, observed);
  },
};
