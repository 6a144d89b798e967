/** A CLI sub-command. `run` returns the process exit code; it prints its own output. */
export interface Command {
  readonly name: string;
  /** One line for `compliance-agent help`. */
  readonly summary: string;
  /** Usage line(s) shown by `compliance-agent help NAME` and on bad arguments. */
  readonly usage: string;
  run(args: string[]): Promise<number>;
}

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, failed: 1, usage: 2, config: 2 } as const;
