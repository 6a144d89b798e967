import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type Config } from '../config/index.js';
import { printError, exitCodeFor } from './output.js';
import { EXIT } from './command.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; allowPositionals: true; options: O }>>;

/** Parse a command's arguments; on a parse error prints it with the usage and returns the usage exit code instead. */
export function parseCommandArgs<O extends Options>(args: string[], usage: string, options: O): { ok: true; parsed: Parsed<O> } | { ok: false; code: number } {
  try {
    return { ok: true, parsed: parseArgs({ args, allowPositionals: true, options }) };
  } catch (e) {
    printError(`${(e as Error).message}\nusage: ${usage}`);
    return { ok: false, code: EXIT.usage };
  }
}

/**
 * Parse `--config C` plus command options, load and validate the config. On failure prints every
 * problem and returns the exit code instead (2 for usage or bad config).
 */
export function parseWithConfig<O extends Options>(
  args: string[],
  usage: string,
  options: O,
): { ok: true; config: Config; values: Record<string, unknown>; positionals: string[] } | { ok: false; code: number } {
  const p = parseCommandArgs(args, usage, { config: { type: 'string' }, ...options });
  if (!p.ok) return p;
  const { parsed } = p;
  const values = parsed.values as Record<string, unknown>;
  const path = values.config;
  if (typeof path !== 'string') {
    printError(`--config is required\nusage: ${usage}`);
    return { ok: false, code: EXIT.usage };
  }
  try {
    return { ok: true, config: loadConfig(path), values, positionals: parsed.positionals };
  } catch (e) {
    printError(e);
    return { ok: false, code: exitCodeFor(e) };
  }
}
