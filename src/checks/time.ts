import type { Check, CheckContext, CheckResult } from './types.js';
import { excerpt, runCommand } from './exec.js';
import { startResult } from './result.js';

type Done = ReturnType<typeof startResult>;

const NUMBER_RE = /^[+-]?\d+(\.\d+)?$/;

/**
 * `chronyc -c tracking` prints 14 comma-separated fields; the fifth ("System time") is the
 * correction chrony is applying, positive when the system clock is behind.
 */
async function fromChrony(ctx: CheckContext, stdout: string, done: Done): Promise<CheckResult> {
  const fields = stdout.trim().split(',');
  if (fields.length !== 14 || !NUMBER_RE.test(fields[4]!) || !/^\d+$/.test(fields[2]!)) {
    return done('error', `chronyc -c tracking printed no tracking record ("${excerpt(stdout)}")`);
  }
  const [refId, server, stratum, , correction, , , , , , , , , leap] = fields as [string, ...string[]];
  const synchronised = leap !== 'Not synchronised' && refId !== '00000000' && Number(stratum) > 0;
  // Reported as the system clock minus true time: positive means the clock is ahead.
  const offsetMs = Math.round(-Number(correction) * 1_000_000) / 1000 || 0;
  const limit = ctx.config.ntpMaxSkewMs;
  const observed = { source: 'chronyc', synchronised, offsetMs: synchronised ? offsetMs : null, server: server || null, stratum: Number(stratum), leap };
  if (!synchronised) return done('drift', 'chrony is not synchronised to any NTP source', observed);
  if (Math.abs(offsetMs) > limit) {
    return done('drift', `clock is ${Math.abs(offsetMs)} ms ${offsetMs > 0 ? 'ahead of' : 'behind'} NTP time (limit ${limit} ms, server ${server})`, observed);
  }
  return done('compliant', `clock within ${Math.abs(offsetMs)} ms of NTP time (limit ${limit} ms, server ${server}, stratum ${stratum})`, observed);
}

/** systemd-timesyncd hosts: timedatectl says whether the kernel clock is synchronised, not by how much. */
async function fromTimedatectl(ctx: CheckContext, done: Done): Promise<CheckResult> {
  const r = await runCommand(ctx.host, 'timedatectl', ['show']);
  if (!r.ok) {
    return done('error', r.result.status === 'missing' ? 'neither chronyc nor timedatectl is installed: the clock cannot be checked' : r.message);
  }
  const values = new Map(
    r.stdout
      .split('\n')
      .map((l) => /^([A-Za-z]+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  const sync = values.get('NTPSynchronized');
  if (sync !== 'yes' && sync !== 'no') return done('error', `timedatectl show printed no NTPSynchronized ("${excerpt(r.stdout)}")`);
  const observed = { source: 'timedatectl', synchronised: sync === 'yes', offsetMs: null, ntpEnabled: values.get('NTP') === 'yes' };
  if (sync === 'no') return done('drift', `the system clock is not NTP-synchronised${values.get('NTP') === 'no' ? ' (NTP is disabled)' : ''}`, observed);
  return done('compliant', 'the system clock is NTP-synchronised (timedatectl; offset not reported)', observed);
}

/**
 * NTP offset against ntpMaxSkewMs, from chronyc, or timedatectl where chrony is not installed.
 * Report only: the agent never sets the clock. The healer reads this check as clock sanity.
 */
export const timeCheck: Check = {
  name: 'time',
  controls: ['HIPAA 164.312(b)', 'SOC 2 CC7.2', 'SOC 2 CC4.1'],
  heal: { kind: 'report_only', why: 'the agent does not set the clock; fix the NTP source or the time daemon (disruptive heals wait for a sane clock)' },
  async run(ctx) {
    const done = startResult('time', ctx, { maxSkewMs: ctx.config.ntpMaxSkewMs });
    const r = await runCommand(ctx.host, 'chronyc', ['-c', 'tracking']);
    if (r.ok) return fromChrony(ctx, r.stdout, done);
    // chronyc absent means another time daemon; chronyc failing means chronyd is broken: an error.
    if (r.result.status === 'missing') return fromTimedatectl(ctx, done);
    return done('error', r.message);
  },
};
