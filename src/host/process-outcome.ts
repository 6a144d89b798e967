import type { ExecResult } from './host.js';

/** How a process ended, whichever way it was spawned; `describeOutcome` turns it into the port's result. */
export interface ProcessOutcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
  readonly timedOut: boolean;
  /** errno code when the binary could not be started (ENOENT: not found). */
  readonly startError: string | null;
  /** Why it could not be started, when `startError` is set. */
  readonly startMessage: string;
  readonly overflowed: boolean;
  readonly signal: string | null;
  readonly exitCode: number | null;
}

export function describeOutcome(command: string, o: ProcessOutcome, maxOutputBytes: number): ExecResult {
  const { stdout, stderr, durationMs } = o;
  if (o.timedOut) return { status: 'timeout', exitCode: null, stdout, stderr, durationMs };
  if (o.startError === 'ENOENT') return { status: 'missing', exitCode: null, stdout: '', stderr: `${command}: command not found`, durationMs };
  if (o.overflowed) {
    return { status: 'error', exitCode: null, stdout, stderr: `${withNewline(stderr)}${command}: output exceeded ${maxOutputBytes} bytes, killed`, durationMs };
  }
  if (o.signal) return { status: 'error', exitCode: null, stdout, stderr: `${withNewline(stderr)}${command}: killed by ${o.signal}`, durationMs };
  if (o.exitCode === null) return { status: 'error', exitCode: null, stdout, stderr: `${command}: ${o.startMessage}`, durationMs };
  return { status: o.exitCode === 0 ? 'ok' : 'nonzero', exitCode: o.exitCode, stdout, stderr, durationMs };
}

/** Signal a whole process group (the command was started as its leader). */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone, which is what we wanted.
  }
}

function withNewline(s: string): string {
  return s && !s.endsWith('\n') ? `${s}\n` : s;
}

/**
 * The timeout of a command started as a process group leader: SIGTERM to the group at
 * `timeoutMs`, SIGKILL `killGraceMs` later. `settle` after the process ended: it stops the timers
 * and, after a timeout, SIGKILLs members that ignored SIGTERM but closed their pipes, so none
 * outlives the call.
 */
export function groupDeadline(pid: number | undefined, timeoutMs: number, killGraceMs: number): { settle(): boolean } {
  let timedOut = false;
  let forceKill: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(pid, 'SIGTERM');
    forceKill = setTimeout(() => killGroup(pid, 'SIGKILL'), killGraceMs);
  }, timeoutMs);
  return {
    settle() {
      clearTimeout(timer);
      clearTimeout(forceKill);
      if (timedOut) killGroup(pid, 'SIGKILL');
      return timedOut;
    },
  };
}
