import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { z } from 'zod';
import { AgentError, parseJsonText, errnoCode } from '../common/index.js';
import { BaselineSchema, ConfigSchema, type Baseline, type Config } from './schema.js';

/** One line per problem: `mcpUrl: must be an https:// URL`. */
export function explainIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`);
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AgentError('config_read', `${what} ${path}: cannot read (${errnoCode(e, 'error')})`);
  }
  const parsed = parseJsonText(text);
  if (!parsed.ok) throw new AgentError('config_json', `${what} ${path}: ${parsed.message}`);
  return parsed.value;
}

export function parseConfig(raw: unknown, source = 'config'): Config {
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = explainIssues(parsed.error.issues);
    throw new AgentError('config_invalid', `${source}: ${lines.length} problem(s)`, lines);
  }
  return { ...parsed.data, hostId: parsed.data.hostId ?? hostname().split('.')[0] ?? 'localhost' };
}

/**
 * Parse and validate config.json. Files it names are not read here: heal-apply, prune and status
 * run outside the agent's unit, where its credentials are not mounted (see assertSinkFiles).
 */
export function loadConfig(path: string): Config {
  return parseConfig(readJson(path, 'config'), path);
}

export function parseBaseline(raw: unknown, source = 'baseline'): Baseline {
  const parsed = BaselineSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = explainIssues(parsed.error.issues);
    throw new AgentError('baseline_invalid', `${source}: ${lines.length} problem(s)`, lines);
  }
  return parsed.data;
}

export function loadBaseline(path: string): Baseline {
  return parseBaseline(readJson(path, 'baseline'), path);
}
