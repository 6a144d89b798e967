import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { writeFileAtomic, errnoCode } from '../common/index.js';
import type { Addresses } from './resolve.js';

const CacheSchema = z
  .object({
    version: z.literal(1),
    hosts: z.record(z.string(), z.object({ v4: z.array(z.ipv4()), v6: z.array(z.ipv6()), resolvedAt: z.string() }).strict()),
  })
  .strict();

export interface CachedHost extends Addresses {
  readonly resolvedAt: string;
}

export type LastGood = ReadonlyMap<string, CachedHost>;

export type CacheRead = { ok: true; hosts: LastGood } | { ok: false; hosts: LastGood; message: string };

/**
 * The last good DNS answer per host. It belongs to egress-refresh alone (its own state
 * directory): a file the agent could write would let the agent widen its own allowlist.
 */
export function readLastGood(path: string): CacheRead {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT') return { ok: true, hosts: new Map() };
    return { ok: false, hosts: new Map(), message: `${path}: cannot read the last good addresses (${code ?? 'error'})` };
  }
  let parsed;
  try {
    parsed = CacheSchema.safeParse(JSON.parse(text));
  } catch {
    return { ok: false, hosts: new Map(), message: `${path}: not valid JSON; starting without last good addresses` };
  }
  if (!parsed.success) return { ok: false, hosts: new Map(), message: `${path}: not a last-good file; starting without last good addresses` };
  return { ok: true, hosts: new Map(Object.entries(parsed.data.hosts)) };
}

export function writeLastGood(path: string, hosts: LastGood): void {
  const body = { version: 1, hosts: Object.fromEntries([...hosts].sort(([a], [b]) => a.localeCompare(b))) };
  writeFileAtomic(path, JSON.stringify(body, null, 2) + '\n', 0o600);
}
