import { mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError, errnoCode, writeFileAtomic } from '../common/index.js';
import type { StateDb } from '../state/index.js';
import type { EvidenceSpec } from './bundle.js';
import { claimedBundle } from './envelope.js';
import type { ReceiptExpectation } from './receipt.js';

const DAY_MS = 86_400_000;

/** The auditor-facing copy of the chain: one envelope file per bundle, named so `ls` sorts by seq. */
export function evidenceFileName(seq: number, bundleId: string): string {
  return `${String(seq).padStart(10, '0')}-${bundleId}.json`;
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

/**
 * What a prune removed from one host's chain, recorded in a signed checkpoint bundle so the
 * chain's new start is evident: `verify` accepts a first bundle that is not seq 1 only when a
 * checkpoint accounts for its predecessor.
 */
export interface Checkpoint {
  readonly host_id: string;
  readonly first_pruned_seq: number;
  /** prev_hash of the first pruned bundle (null when it was seq 1). */
  readonly first_pruned_prev_hash: string | null;
  readonly last_pruned_seq: number;
  /** Envelope hash of the last pruned bundle: the prev_hash of the chain's new first bundle. */
  readonly last_pruned_hash: string;
  readonly last_pruned_bundle_id: string;
  readonly pruned_count: number;
}

export interface PruneOptions {
  /** Whether the MCP acknowledged this exact bundle with a countersigned receipt; only those may go. */
  readonly acknowledged: (bundle: ReceiptExpectation) => boolean;
  /** Chain the checkpoint bundle; called inside the prune's transaction. */
  readonly checkpoint: (c: Checkpoint) => void;
}

export interface PruneReport {
  readonly deleted: number;
  /** Past retention but kept: no valid countersigned receipt (or behind one without). */
  readonly keptUnacknowledged: number;
  readonly remaining: number;
  readonly checkpoints: readonly Checkpoint[];
}

/** The check name of checkpoint bundles. */
export const CHECKPOINT_CHECK = 'chain';

/** The checkpoint as evidence: `pre_state.checkpoint` holds the range, `verify` reads it. */
export function checkpointEvidence(c: Checkpoint, now: number): EvidenceSpec {
  return {
    check: CHECKPOINT_CHECK,
    outcome: 'compliant',
    startedAt: now,
    endedAt: now,
    controls: ['HIPAA 164.316(b)(2)(i)', 'HIPAA 164.312(c)(1)', 'SOC 2 CC7.2'],
    preState: { checkpoint: { ...c } },
    reason: `pruned seq ${c.first_pruned_seq}..${c.last_pruned_seq} (${c.pruned_count} bundle(s), each acknowledged by a countersigned MCP receipt); the local chain now starts at seq ${c.last_pruned_seq + 1}, whose prev_hash is ${c.last_pruned_hash}`,
  };
}

interface PruneRow {
  host_id: string;
  seq: number;
  bundle_id: string;
  envelope_hash: string;
  envelope: string;
  created_at: number;
}

/**
 * Prune the local store. Per host, only the oldest bundles go, in one unbroken run from the start
 * of the chain: each outside the newest `keepLast`, older than `minAgeDays`, AND acknowledged by
 * a countersigned receipt. The run stops at the first bundle that may not go, so the store (and the
 * evidence directory) stays a gap-free tail of the chain, anchored by the checkpoint bundle that is
 * chained in the same transaction as the deletes.
 */
export function pruneEvidence(db: StateDb, dir: string, policy: PrunePolicy, now: number, options: PruneOptions): PruneReport {
  const cutoff = now - policy.minAgeDays * DAY_MS;
  // A checkpoint an interrupted prune committed but did not write out goes to disk before its
  // range's leftover files are removed.
  exportEvidence(db, dir);
  // Orphans first: a file whose row an interrupted prune already deleted is older than every
  // remaining file, so removing it before anything else keeps the directory a gap-free tail of the
  // chain at every moment, and `verify` of it holds after a crash at any point of a prune.
  removeOrphans(db, dir);
  const checkpoints: Checkpoint[] = [];
  const deletedFiles: string[] = [];
  let keptUnacknowledged = 0;
  const del = db.prepare('DELETE FROM evidence WHERE host_id = ? AND seq = ?');
  const delReceipt = db.prepare('DELETE FROM receipts WHERE bundle_id = ?');
  db.transaction(() => {
    const hosts = db.prepare('SELECT host_id, MAX(seq) AS last FROM evidence GROUP BY host_id').all() as { host_id: string; last: number }[];
    for (const { host_id, last } of hosts) {
      const rows = db
        .prepare('SELECT host_id, seq, bundle_id, envelope_hash, envelope, created_at FROM evidence WHERE host_id = ? AND seq <= ? ORDER BY seq')
        .all(host_id, last - policy.keepLast) as PruneRow[];
      const run: PruneRow[] = [];
      for (const r of rows) {
        if (r.created_at >= cutoff || !options.acknowledged({ bundleId: r.bundle_id, envelopeHash: r.envelope_hash, seq: r.seq, hostId: r.host_id })) break;
        run.push(r);
      }
      keptUnacknowledged += rows.filter((x) => x.created_at < cutoff).length - run.length;
      if (run.length === 0) continue;
      const first = run[0]!;
      const lastPruned = run[run.length - 1]!;
      for (const r of run) {
        del.run(r.host_id, r.seq);
        delReceipt.run(r.bundle_id);
        deletedFiles.push(evidenceFileName(r.seq, r.bundle_id));
      }
      const c: Checkpoint = {
        host_id,
        first_pruned_seq: first.seq,
        first_pruned_prev_hash: prevHashOf(first.envelope),
        last_pruned_seq: lastPruned.seq,
        last_pruned_hash: lastPruned.envelope_hash,
        last_pruned_bundle_id: lastPruned.bundle_id,
        pruned_count: run.length,
      };
      options.checkpoint(c);
      checkpoints.push(c);
    }
  }).immediate();
  // The checkpoint's file before any deletion, then the pruned files oldest first: at every moment
  // the directory starts at a bundle the checkpoint accounts for.
  exportEvidence(db, dir);
  const existing = new Set(readdirSafe(dir));
  for (const f of deletedFiles) if (existing.has(f)) unlinkSync(join(dir, f));
  const remaining = (db.prepare('SELECT COUNT(*) AS n FROM evidence').get() as { n: number }).n;
  return { deleted: deletedFiles.length, keptUnacknowledged, remaining, checkpoints };
}

function removeOrphans(db: StateDb, dir: string): void {
  const known = new Set((db.prepare('SELECT seq, bundle_id FROM evidence').all() as { seq: number; bundle_id: string }[]).map((r) => evidenceFileName(r.seq, r.bundle_id)));
  for (const f of readdirSafe(dir).sort()) {
    if (/^\d{10}-[0-9a-f-]{36}\.json$/.test(f) && !known.has(f)) unlinkSync(join(dir, f));
  }
}

/** The prev_hash of an envelope this agent stored; a row that is not one throws (the prune rolls back). */
function prevHashOf(envelope: string): string | null {
  const claimed = claimedBundle(JSON.parse(envelope));
  if (!claimed) throw new AgentError('state_corrupt', 'a stored evidence envelope does not carry a bundle');
  return claimed.prev_hash ?? null;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return [];
    throw e;
  }
}
