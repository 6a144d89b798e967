/**
 * The Host port: everything that touches the operating system. The agent and the healer only
 * ever see this interface, so a simulated NixOS host can stand in for the real one in tests.
 */
export type ExecStatus =
  /** exit code 0 */
  | 'ok'
  /** ran and exited non-zero */
  | 'nonzero'
  /** killed after timeoutMs */
  | 'timeout'
  /** binary not found */
  | 'missing'
  /** could not be started for another reason, or killed by a signal */
  | 'error';

export interface ExecResult {
  readonly status: ExecStatus;
  /** null when the process never exited normally (missing, timeout, signal). */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

export interface ExecOptions {
  /** Hard limit; the process is killed (SIGKILL after a grace period) when it passes. */
  readonly timeoutMs: number;
  readonly input?: string;
  /**
   * A query the agent runs every cycle: the real host spawns it without execa's per-command CPU
   * cost, with the same timeout, process-group kill and output cap.
   */
  readonly everyCycle?: boolean;
}

export type ReadResult = { ok: true; text: string } | { ok: false; code: 'ENOENT' | 'EACCES' | 'EISDIR' | 'EIO' | 'TOO_LARGE'; message: string };

export interface FileStat {
  readonly mtimeMs: number;
  readonly size: number;
  readonly mode: number;
}

export interface Host {
  /** Run a binary (never a shell). Never throws: failures are ExecResult statuses. */
  exec(command: string, args: readonly string[], options: ExecOptions): Promise<ExecResult>;
  /** Read a text file, at most maxBytes (default 1 MiB). Never throws. */
  readFile(path: string, maxBytes?: number): Promise<ReadResult>;
  /** stat a path; null when it does not exist or cannot be read. */
  stat(path: string): Promise<FileStat | null>;
  /** The target of a symbolic link as stored (readlink(2)); null when it is not a link or cannot be read. */
  readlink(path: string): Promise<string | null>;
  /** The path with every link resolved (realpath(3)); null when it does not exist or cannot be resolved. */
  realpath(path: string): Promise<string | null>;
  /** Wall clock, ms since the epoch. Simulated hosts move it by hand. */
  now(): number;
  /** The machine's host name. */
  hostname(): string;
}
