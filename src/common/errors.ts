/**
 * Errors are values: a stable machine code plus one human sentence.
 * Secrets never go into `message`; callers pass paths and names, never contents.
 *
 * A failure returned rather than thrown uses the same words: `{ ok: false, message }`, with a
 * `code` or `reason` only for a machine-readable kind (`reason: 'bad_signature'`). Fields of the
 * wire formats and the evidence keep their documented names (a bundle's or a dead letter's `reason`).
 */
export class AgentError extends Error {
  readonly code: string;
  readonly details: readonly string[];

  constructor(code: string, message: string, details: readonly string[] = []) {
    super(message);
    this.name = 'AgentError';
    this.code = code;
    this.details = details;
  }
}

/** One line for logs and CLI output, never including a stack. */
export function describeError(e: unknown): string {
  if (e instanceof AgentError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}
