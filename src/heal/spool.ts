import { closeSync, constants, fstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { AgentError, writeFileAtomic } from '../common/index.js';
import { EnvelopeSchema, type Envelope } from '../crypto/index.js';
import { ActionTakenSchema } from '../evidence/index.js';
import { HealActionSchema } from './actions.js';

/**
 * The spool between the unprivileged agent and the root healer (DESIGN 4), under
 * `<stateDir>/heal/`: requests/ (agent writes, healer reads and removes), results/ (healer writes,
 * agent reads and removes), pending/ (deferred orders, agent only).
 */
export function spoolPaths(stateDir: string) {
  const root = join(stateDir, 'heal');
  return { root, requests: join(root, 'requests'), results: join(root, 'results'), pending: join(root, 'pending'), applied: join(root, 'applied.json') };
}

/** The agent creates the spool, so it owns results/ and can remove what the healer writes there. */
export function ensureSpool(stateDir: string): void {
  const p = spoolPaths(stateDir);
  for (const d of [p.requests, p.results, p.pending]) mkdirSync(d, { recursive: true, mode: 0o700 });
}

const isoTime = z.iso.datetime();
const MAX_SPOOL_FILE = 256 * 1024;

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

export const HEAL_OUTCOMES = ['healed', 'rolled_back', 'failed', 'deferred', 'rejected'] as const;
export type HealOutcome = (typeof HEAL_OUTCOMES)[number];

export const HealResultSchema = z
  .object({
    version: z.literal(1),
    request_id: z.uuid(),
    order_id: z.uuid().nullable(),
    /** The evidence `check` field: the checks the order is about, or `order`. */
    check: z.string().max(256),
    outcome: z.enum(HEAL_OUTCOMES),
    reason: z.string().max(4096).nullable(),
    started_at: isoTime,
    finished_at: isoTime,
    pre_state: z.record(z.string(), z.unknown()).nullable(),
    action_taken: z.array(ActionTakenSchema),
    post_state: z.record(z.string(), z.unknown()).nullable(),
    rollback_available: z.boolean(),
    controls: z.array(z.string()),
    /** On `deferred`: the order envelope, so the agent keeps it pending and asks again later. */
    retry_envelope: EnvelopeSchema.nullable(),
  })
  .strict();
export type HealResult = z.infer<typeof HealResultSchema>;

export const PendingHealSchema = z
  .object({ version: z.literal(1), order_id: z.uuid(), deferred_at: isoTime, reason: z.string(), envelope: EnvelopeSchema })
  .strict();
export type PendingHeal = z.infer<typeof PendingHealSchema>;

const isUuidFile = (name: string): boolean => name.endsWith('.json') && z.uuid().safeParse(name.slice(0, -5)).success;

/** Spool entries in name order; writeFileAtomic's dot-prefixed temp files are not entries. */
export function listSpool(dir: string): { valid: string[]; strays: string[] } {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { valid: [], strays: [] };
    throw new AgentError('spool_read', `${dir}: cannot list (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const visible = names.filter((n) => !n.startsWith('.'));
  return { valid: visible.filter(isUuidFile).map((n) => join(dir, n)), strays: visible.filter((n) => !isUuidFile(n)).map((n) => join(dir, n)) };
}

/**
 * Read a spool file without following a symlink and only if it is a small regular file: the
 * healer runs as root over a directory the agent writes, so a planted link must not make it read
 * (or echo) another file.
 */
export function readSpoolFile(path: string): { ok: true; value: unknown } | { ok: false; message: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
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
    try {
      return { ok: true, value: JSON.parse(buf.subarray(0, off).toString('utf8')) };
    } catch {
      return { ok: false, message: 'not JSON' };
    }
  } finally {
    closeSync(fd);
  }
}

export function writeHealRequest(stateDir: string, request: HealRequest): string {
  const path = join(spoolPaths(stateDir).requests, `${request.request_id}.json`);
  writeFileAtomic(path, JSON.stringify(HealRequestSchema.parse(request), null, 2) + '\n', 0o600);
  return path;
}

/** Results are world-readable so the unprivileged agent can read what root wrote. */
export function writeHealResult(stateDir: string, result: HealResult): string {
  const dir = spoolPaths(stateDir).results;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${result.request_id}.json`);
  writeFileAtomic(path, JSON.stringify(HealResultSchema.parse(result), null, 2) + '\n', 0o644);
  return path;
}

export function writePending(stateDir: string, pending: PendingHeal): void {
  writeFileAtomic(join(spoolPaths(stateDir).pending, `${pending.order_id}.json`), JSON.stringify(PendingHealSchema.parse(pending), null, 2) + '\n', 0o600);
}

export function removeSpoolFile(path: string): void {
  rmSync(path, { force: true });
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
