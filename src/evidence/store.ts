import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/index.js';
import type { StateDb } from '../state/index.js';

const DAY_MS = 86_400_000;

/** The auditor-facing copy of the chain: one envelope file per bundle, named so `ls` sorts by seq. */
export function evidenceFileName(seq: number, bundleId: string): string {
  return `${String(seq).padStart(10, '0')}-${bundleId}.json`;
}

export function evidenceDir(stateDir: string): string {
  return join(stateDir, 'evidence');
}

/**
 * Write every stored-but-not-exported envelope to the evidence directory. The database is the
 * source of truth; a crash between writing a file and marking it only rewrites the same file.
 */
export function exportEvidence(db: StateDb, dir: string): number {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const rows = db.prepare('SELECT host_id, seq, bundle_id, envelope FROM evidence WHERE exported = 0 ORDER BY host_id, seq').all() as {
    host_id: string;
    seq: number;
    bundle_id: string;
    envelope: string;
  }[];
  const mark = db.prepare('UPDATE evidence SET exported = 1 WHERE host_id = ? AND seq = ?');
  for (const r of rows) {
    writeFileAtomic(join(dir, evidenceFileName(r.seq, r.bundle_id)), r.envelope + '\n', 0o640);
    mark.run(r.host_id, r.seq);
  }
  return rows.length;
}

export interface PrunePolicy {
  /** Keep at least the newest N bundles (evidenceRetention). */
  readonly keepLast: number;
  /** Never delete a bundle younger than this many days (pruneRetentionDays). */
  readonly minAgeDays: number;
}

export interface PruneReport {
  readonly deleted: number;
  readonly keptUndelivered: number;
  readonly remaining: number;
}

/**
 * Prune the local store. A bundle goes only when it is outside the newest `keepLast`, older than
 * `minAgeDays`, AND the MCP has acknowledged it: pruning never loses undelivered evidence.
 */
export function pruneEvidence(db: StateDb, dir: string, policy: PrunePolicy, now: number): PruneReport {
  const cutoff = now - policy.minAgeDays * DAY_MS;
  const candidates = db
    .prepare(
      `SELECT e.host_id, e.seq, e.bundle_id,
              EXISTS (SELECT 1 FROM outbox o WHERE o.bundle_id = e.bundle_id AND o.destination = 'mcp' AND o.state != 'done') AS undelivered
         FROM evidence e
        WHERE e.created_at < ?
          AND e.seq <= (SELECT MAX(seq) FROM evidence x WHERE x.host_id = e.host_id) - ?
        ORDER BY e.host_id, e.seq`,
    )
    .all(cutoff, policy.keepLast) as { host_id: string; seq: number; bundle_id: string; undelivered: number }[];
  // Orphans first: a file whose row an interrupted prune already deleted is older than every
  // remaining file, so removing it before anything else keeps the directory a gap-free tail of the
  // chain at every moment, and `verify` of it holds after a crash at any point of a prune.
  const known = new Set(
    (db.prepare('SELECT seq, bundle_id FROM evidence').all() as { seq: number; bundle_id: string }[]).map((r) => evidenceFileName(r.seq, r.bundle_id)),
  );
  for (const f of readdirSafe(dir)) {
    if (/^\d{10}-[0-9a-f-]{36}\.json$/.test(f) && !known.has(f)) unlinkSync(join(dir, f));
  }
  const del = db.prepare('DELETE FROM evidence WHERE host_id = ? AND seq = ?');
  let deleted = 0;
  let keptUndelivered = 0;
  const existing = new Set(readdirSafe(dir));
  for (const c of candidates) {
    if (c.undelivered) {
      keptUndelivered++;
      continue;
    }
    // Row first, oldest first: a crash after it leaves this one orphan file, which the next prune removes above.
    del.run(c.host_id, c.seq);
    const file = evidenceFileName(c.seq, c.bundle_id);
    if (existing.has(file)) unlinkSync(join(dir, file));
    deleted++;
  }
  const remaining = (db.prepare('SELECT COUNT(*) AS n FROM evidence').get() as { n: number }).n;
  return { deleted, keptUndelivered, remaining };
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
