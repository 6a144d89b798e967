/**
 * Errors are values: a stable machine code plus one human sentence.
 * Secrets never go into `message`; callers pass paths and names, never contents.
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
