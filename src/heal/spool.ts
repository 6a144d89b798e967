import { closeSync, constants, fstatSync, fsyncSync, lstatSync, openSync, readdirSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { AgentError, oneLine } from '../common/index.js';
import { EnvelopeSchema, type Envelope } from '../crypto/index.js';
import { ActionTakenSchema } from '../evidence/index.js';
import { HealActionSchema } from './actions.js';

/**
 * The healer's tree (config.healDir), owned by root:
 *   state/     root 0700: the healer's own database; the agent cannot even list it.
 *   requests/  root:<agent group> 1770: the drop box. The agent creates its requests here and,
 *              the directory being sticky, can remove or rename only its own entries. Root reads
 *              them without following links and never removes or renames anything here.
 *   results/   root:<agent group> 0750: results root writes (0640) for the agent to read.
 */
export function healPaths(healDir: string) {
  return { root: healDir, state: join(healDir, 'state'), requests: join(healDir, 'requests'), results: join(healDir, 'results') };
}
export type HealPaths = ReturnType<typeof healPaths>;

const isoTime = z.iso.datetime();
/** The largest request or result file either side reads. */
export const MAX_SPOOL_FILE = 256 * 1024;
export const MAX_REASON = 4096;

export const HealRequestSchema = z
  .object({
    version: z.literal(1),
    request_id: z.uuid(),
    created_at: isoTime,
    /** The order exactly as the MCP relayed it: the healer verifies this signature itself. */
    envelope: EnvelopeSchema,
    plan: z.object({ order_id: z.uuid(), actions: z.array(HealActionSchema).min(1).max(64) }).strict(),
  })
  .strict();
export type HealRequest = z.infer<typeof HealRequestSchema>;

export const HEAL_OUTCOMES = ['healed', 'rolled_back', 'failed', 'deferred', 'rejected', 'compliant'] as const;
export type HealOutcome = (typeof HEAL_OUTCOMES)[number];

export const HealResultSchema = z
  .object({
    version: z.literal(1),
    /** The result file's own name: several results may answer one request (deferred, then applied). */
    result_id: z.uuid(),
    /** null for what the healer reports on its own (its unit failed). */
    request_id: z.uuid().nullable(),
    order_id: z.uuid().nullable(),
    /** The evidence `check` field: the checks the order is about, or `order`. */
    check: z.string().max(256),
    outcome: z.enum(HEAL_OUTCOMES),
    reason: z.string().max(MAX_REASON).nullable(),
    started_at: isoTime,
    finished_at: isoTime,
    pre_state: z.record(z.string(), z.unknown()).nullable(),
    action_taken: z.array(ActionTakenSchema),
    post_state: z.record(z.string(), z.unknown()).nullable(),
    rollback_available: z.boolean(),
    controls: z.array(z.string()),
  })
  .strict();
export type HealResult = z.infer<typeof HealResultSchema>;

const UUID_JSON = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json$/;

/** `<uuid>.json` in lower case: every other name in the drop box or results is not an entry. */
export function entryId(name: string): string | null {
  return UUID_JSON.test(name) ? name.slice(0, -5) : null;
}

/**
 * A reason for a result or a log line: one line, bounded, control characters gone. Everything
 * root writes or prints about a request goes through here, so no request can add a line.
 */
export function safeReason(text: string): string {
  return oneLine(text, MAX_REASON - 8);
}

/**
 * Zod issues as text that names only the schema's own fields: unknown keys are counted, not
 * echoed, and a path segment that is not a plain identifier or index is shown as `?`.
 */
export function describeIssues(issues: readonly z.core.$ZodIssue[], max = 5): string {
  const seg = (p: PropertyKey) => (typeof p === 'number' ? String(p) : typeof p === 'string' && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(p) ? p : '?');
  const lines = issues.slice(0, max).map((i) => {
    const where = i.path.length ? i.path.map(seg).join('.') : '(root)';
    const what = i.code === 'unrecognized_keys' ? `${i.keys.length} unknown field(s)` : i.code === 'invalid_type' ? `expected ${i.expected}` : i.code;
    return `${where}: ${what}`;
  });
  return safeReason(lines.join('; ') + (issues.length > max ? `; and ${issues.length - max} more` : ''));
}

// The agent's side of the drop box: plain file calls as the agent user, in a directory the
// agent may write; nothing here runs as root.

/** Write a request into the drop box: a temp name of the agent's own, then renamed into place. */
export function writeHealRequest(healDir: string, request: HealRequest): string {
  const dir = healPaths(healDir).requests;
  const text = JSON.stringify(HealRequestSchema.parse(request)) + '\n';
  const final = join(dir, `${request.request_id}.json`);
  const tmp = join(dir, `.${request.request_id}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, final);
  return final;
}

/** The agent's entries in the drop box with their age: requests by id, anything else as a stray name. */
export function listOwnRequests(healDir: string): { requests: Array<{ id: string; mtimeMs: number }>; strays: Array<{ name: string; mtimeMs: number }> } {
  const dir = healPaths(healDir).requests;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    // No healer installed (yet): nothing of the agent's is there.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { requests: [], strays: [] };
    throw new AgentError('spool_read', `${dir}: cannot list the heal drop box (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const requests: Array<{ id: string; mtimeMs: number }> = [];
  const strays: Array<{ name: string; mtimeMs: number }> = [];
  for (const name of names.sort()) {
    let mtimeMs: number;
    try {
      mtimeMs = lstatSync(join(dir, name)).mtimeMs;
    } catch {
      continue;
    }
    const id = entryId(name);
    if (id) requests.push({ id, mtimeMs });
    else strays.push({ name, mtimeMs });
  }
  return { requests, strays };
}

export function removeOwnRequest(healDir: string, name: string): void {
  rmSync(join(healPaths(healDir).requests, name), { force: true, recursive: true });
}

/** Result files root wrote, by name order. */
export function listResults(healDir: string): string[] {
  const dir = healPaths(healDir).results;
  try {
    return readdirSync(dir).filter((n) => entryId(n) !== null).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new AgentError('spool_read', `${dir}: cannot list heal results (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Read a result file without following a link and only if it is a small regular file. */
export function readResultFile(healDir: string, name: string): { ok: true; result: HealResult } | { ok: false; message: string } {
  let fd: number;
  try {
    fd = openSync(join(healPaths(healDir).results, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    return { ok: false, message: `cannot open (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, message: 'not a regular file' };
    if (st.size > MAX_SPOOL_FILE) return { ok: false, message: `${st.size} bytes, over the ${MAX_SPOOL_FILE}-byte limit` };
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    let value: unknown;
    try {
      value = JSON.parse(buf.subarray(0, off).toString('utf8'));
    } catch {
      return { ok: false, message: 'not JSON' };
    }
    const parsed = HealResultSchema.safeParse(value);
    if (!parsed.success) return { ok: false, message: describeIssues(parsed.error.issues) };
    if (`${parsed.data.result_id}.json` !== name) return { ok: false, message: 'result_id does not match the file name' };
    return { ok: true, result: parsed.data };
  } finally {
    closeSync(fd);
  }
}

export function asEnvelope(input: unknown): Envelope | null {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch {
      return null;
    }
  }
  const parsed = EnvelopeSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}
