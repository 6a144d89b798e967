import * as z from 'zod';
import type { CheckResult } from '../checks/index.js';
import type { Host } from '../host/index.js';

export interface GenerationInfo {
  /** The system profile's generation number, null when it cannot be read. */
  readonly generation: number | null;
  /** What /run/current-system points at. */
  readonly system: string | null;
  /** Whether an older generation exists for `nixos-rebuild switch --rollback` to return to. */
  readonly rollbackAvailable: boolean;
}

const QUERY_TIMEOUT_MS = 30_000;
const GenerationList = z.array(z.object({ generation: z.number().int(), current: z.boolean() }).loose());

/** Read-only queries, not actions: which generation runs and whether there is one to roll back to. */
export async function generationInfo(host: Host): Promise<GenerationInfo> {
  const [profile, current, list] = await Promise.all([
    host.exec('readlink', ['/nix/var/nix/profiles/system'], { timeoutMs: QUERY_TIMEOUT_MS }),
    host.exec('readlink', ['-f', '/run/current-system'], { timeoutMs: QUERY_TIMEOUT_MS }),
    host.exec('nixos-rebuild', ['list-generations', '--json'], { timeoutMs: QUERY_TIMEOUT_MS }),
  ]);
  const m = profile.status === 'ok' ? /^system-(\d+)-link$/.exec(profile.stdout.trim()) : null;
  const generation = m ? Number(m[1]) : null;
  const system = current.status === 'ok' && current.stdout.trim().startsWith('/nix/store/') ? current.stdout.trim() : null;
  let rollbackAvailable = false;
  if (list.status === 'ok' && generation !== null) {
    try {
      const gens = GenerationList.safeParse(JSON.parse(list.stdout));
      rollbackAvailable = gens.success && gens.data.some((g) => g.generation < generation);
    } catch {
      rollbackAvailable = false;
    }
  }
  return { generation, system, rollbackAvailable };
}

/** pre_state / post_state: the generation and each check's status and finding, compact and secret-free. */
export function stateSnapshot(gen: GenerationInfo | null, results: readonly CheckResult[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...(gen ? { generation: gen.generation, system: gen.system } : {}),
    checks: Object.fromEntries(results.map((r) => [r.check, { status: r.status, summary: r.summary, ...(r.driftUnits?.length ? { drift_units: [...r.driftUnits] } : {}) }])),
    ...extra,
  };
}
