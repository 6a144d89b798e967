import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type Config } from '../config/index.js';
import { printError, exitCodeFor } from './output.js';
import { EXIT } from './command.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * Parse `--config C` plus command options, load and validate the config. On failure prints every
 * problem and returns the exit code instead (2 for usage or bad config).
 */
export function parseWithConfig<O extends Options>(
  args: string[],
  usage: string,
  options: O,
): { ok: true; config: Config; values: Record<string, unknown>; positionals: string[] } | { ok: false; code: number } {
  let parsed;
  try {
    parsed = parseArgs({ args, allowPositionals: true, options: { config: { type: 'string' }, ...options } });
  } catch (e) {
    printError(`${(e as Error).message}\nusage: ${usage}`);
    return { ok: false, code: EXIT.usage };
  }
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
