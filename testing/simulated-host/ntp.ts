import { fail, ok, type SimReply } from './reply.js';

export interface NtpState {
  /** System clock minus true time, ms (positive: the clock is ahead). */
  offsetMs: number;
  synchronised: boolean;
  server: string;
  stratum: number;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function systemdTimestamp(ms: number): string {
  const d = new Date(ms);
  return `${DAYS[d.getUTCDay()]} ${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** `chronyc -c tracking` (CSV, as chronyc's print_report writes it) and `timedatectl show`. */
export function chronyc(state: NtpState, args: readonly string[], now: number): SimReply {
  if (args.length !== 2 || args[0] !== '-c' || args[1] !== 'tracking') return fail(1, `Unrecognized command\n`);
  if (!state.synchronised) {
    return ok('00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000,1.000000000,1.000000000,0.0,Not synchronised\n', 5);
  }
  const refId = state.server
    .split('.')
    .map((o) => Number(o).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
  // chrony reports the correction to apply: positive when the system clock is behind ("slow").
  const correction = -state.offsetMs / 1000;
  const refTime = ((now - 64_000) / 1000).toFixed(9);
  const fields = [
    refId,
    state.server,
    String(state.stratum),
    refTime,
    correction.toFixed(9),
    '-0.000004213',
    '0.000017402',
    '-11.742',
    '-0.001',
    '0.032',
    '0.012764538',
    '0.000489121',
    '64.4',
    'Normal',
  ];
  return ok(fields.join(',') + '\n', 5);
}

export function timedatectl(state: NtpState, args: readonly string[], now: number): SimReply {
  if (args.length !== 1 || args[0] !== 'show') return fail(1, `Unknown command verb '${args[0] ?? ''}'.\n`);
  const t = systemdTimestamp(now);
  return ok(`Timezone=UTC\nLocalRTC=no\nCanNTP=yes\nNTP=yes\nNTPSynchronized=${state.synchronised ? 'yes' : 'no'}\nTimeUSec=${t}\nRTCTimeUSec=${t}\n`, 15);
}
