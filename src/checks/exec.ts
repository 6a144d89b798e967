import { firstLine, oneLine } from '../common/index.js';
import type { ExecResult, Host } from '../host/index.js';

/** Every command a check runs gets this long; a check runs a handful, well inside its own deadline. */
const EXEC_TIMEOUT_MS = 10_000;

export type CommandOutcome = { ok: true; stdout: string; exitCode: number } | { ok: false; message: string; result: ExecResult };

/** `: <first line of stderr>`, or nothing when it said nothing. */
function stderrLine(r: ExecResult): string {
  const line = oneLine(firstLine(r.stderr));
  return line ? `: ${line}` : '';
}

/** One sentence saying why a command did not give a usable answer. */
function describeFailure(command: string, args: readonly string[], r: ExecResult, timeoutMs: number): string {
  const line = [command, ...args].join(' ');
  switch (r.status) {
    case 'missing':
      return `${command} is not installed (not found on PATH)`;
    case 'timeout':
      return `${line} did not finish within ${timeoutMs / 1000} s`;
    case 'nonzero':
      return `${line} exited ${r.exitCode}${stderrLine(r)}`;
    case 'error':
      return `${line} could not run${stderrLine(r)}`;
    case 'ok':
      return `${line} succeeded`;
  }
}

/** Run a command; exit codes in `okExitCodes` (default 0) count as answers. */
export async function runCommand(
  host: Host,
  command: string,
  args: readonly string[],
  opts: { okExitCodes?: readonly number[]; timeoutMs?: number; everyCycle?: boolean } = {},
): Promise<CommandOutcome> {
  const timeoutMs = opts.timeoutMs ?? EXEC_TIMEOUT_MS;
  const r = await host.exec(command, args, { timeoutMs, ...(opts.everyCycle ? { everyCycle: true } : {}) });
  const okCodes = opts.okExitCodes ?? [0];
  if ((r.status === 'ok' || r.status === 'nonzero') && r.exitCode !== null && okCodes.includes(r.exitCode)) {
    return { ok: true, stdout: r.stdout, exitCode: r.exitCode };
  }
  return { ok: false, message: describeFailure(command, args, r, timeoutMs), result: r };
}

/** A short excerpt of unexpected output for an error summary (never a whole file). */
export function excerpt(s: string): string {
  return oneLine(s, 60);
}
