// Not common/index.js: cli.ts loads this for every command, which must not pay for the logger or
// the HTTP pool before it needs them (bench/cold-start.ts).
import { AgentError, describeError } from '../common/errors.js';
import { EXIT } from './command.js';

/** Print an error for a human: the one-line description, then each detail indented. */
export function printError(e: unknown): void {
  const lines = [typeof e === 'string' ? e : `error: ${describeError(e)}`];
  if (e instanceof AgentError) for (const d of e.details) lines.push(`  ${d}`);
  process.stderr.write(lines.join('\n') + '\n');
}

/** Exit code for an error thrown while loading config: EXIT.config for bad config, EXIT.failed otherwise. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof AgentError && /^(config|baseline)_/.test(e.code)) return EXIT.config;
  return EXIT.failed;
}
