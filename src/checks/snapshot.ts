import type { CheckContext } from './types.js';

/** A snapshot older than this no longer says anything about the running system. */
function snapshotMaxAgeMs(pollIntervalS: number): number {
  return Math.max(600_000, 3 * pollIntervalS * 1000);
}

export type Snapshot = { ok: true; text: string } | { ok: false; message: string };

/**
 * A file a root-side unit writes on a timer with facts the unprivileged agent cannot gather
 * itself (the nftables ruleset, the block devices): its text, unless it is missing or stale.
 */
export async function readSnapshot(ctx: CheckContext, file: string, maxBytes?: number): Promise<Snapshot> {
  const [stat, read] = await Promise.all([ctx.host.stat(file), ctx.host.readFile(file, maxBytes)]);
  if (!read.ok || !stat) return { ok: false, message: `${file}: ${read.ok ? 'cannot stat' : read.message}` };
  const age = ctx.host.now() - stat.mtimeMs;
  const limit = snapshotMaxAgeMs(ctx.config.pollInterval);
  if (age > limit) return { ok: false, message: `${file} is ${Math.round(age / 1000)} s old (limit ${limit / 1000} s): the snapshot unit is not running` };
  return { ok: true, text: read.text };
}
