import { randomUUID } from 'node:crypto';
import { AGENT_VERSION, AgentError } from '../common/index.js';
import { signEnvelope, envelopeHash, canonicalEnvelope, EVIDENCE_PAYLOAD_TYPE, type SecretKey } from '../crypto/index.js';
import type { StateDb } from '../state/index.js';
import { EvidenceBundleSchema, type EvidenceBundle, type EvidenceDraft } from './bundle.js';

/** The delivery queue a signed envelope goes into, one row per destination (the queue stage's Outbox). */
export interface DeliveryQueue {
  enqueue(bundleId: string, body: string, destinations: readonly ('mcp' | 'webhook' | 'syslog')[], now: number): void;
}

export interface ChainedEvidence {
  readonly bundle: EvidenceBundle;
  /** Canonical envelope JSON, exactly what is stored, queued and hashed. */
  readonly envelope: string;
  readonly envelopeHash: string;
}

export interface ChainHead {
  readonly seq: number;
  readonly headHash: string | null;
}

export function readChainHead(db: StateDb, hostId: string): ChainHead {
  const row = db.prepare('SELECT seq, head_hash FROM chain_head WHERE host_id = ?').get(hostId) as { seq: number; head_hash: string } | undefined;
  return row ? { seq: row.seq, headHash: row.head_hash } : { seq: 0, headHash: null };
}

/** A fresh bundle_id (uuid v4) for a draft. */
export function newBundleId(): string {
  return randomUUID();
}

/**
 * Chain, sign, store and enqueue evidence drafts in ONE transaction: either every bundle gets its
 * seq, prev_hash, stored row and outbox rows, or none does. Many drafts per call is a group commit.
 */
export class EvidenceChain {
  private readonly head;
  private readonly insertEvidence;
  private readonly upsertHead;

  constructor(
    private readonly db: StateDb,
    private key: SecretKey,
    private readonly queue: DeliveryQueue,
  ) {
    this.head = db.prepare('SELECT seq, head_hash FROM chain_head WHERE host_id = ?');
    this.insertEvidence = db.prepare('INSERT INTO evidence (seq, host_id, bundle_id, check_name, outcome, created_at, envelope, envelope_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.upsertHead = db.prepare(
      'INSERT INTO chain_head (host_id, seq, head_hash) VALUES (?, ?, ?) ON CONFLICT(host_id) DO UPDATE SET seq = excluded.seq, head_hash = excluded.head_hash',
    );
  }

  /** Sign every later bundle with this key (after a rotation bundle signed by the current one). */
  useKey(key: SecretKey): void {
    this.key = key;
  }

  append(drafts: readonly EvidenceDraft[], destinations: readonly ('mcp' | 'webhook' | 'syslog')[], now: number): ChainedEvidence[] {
    return this.db.transaction(() => drafts.map((d) => this.appendOne(d, destinations, now)))();
  }

  private appendOne(draft: EvidenceDraft, destinations: readonly ('mcp' | 'webhook' | 'syslog')[], now: number): ChainedEvidence {
    const row = this.head.get(draft.host_id) as { seq: number; head_hash: string } | undefined;
    const candidate = {
      version: '1.0' as const,
      ...draft,
      agent_version: AGENT_VERSION,
      seq: (row?.seq ?? 0) + 1,
      prev_hash: row?.head_hash ?? null,
    };
    const parsed = EvidenceBundleSchema.safeParse(candidate);
    if (!parsed.success) {
      // A malformed draft is a programming error upstream; refuse it rather than sign garbage.
      throw new AgentError(
        'evidence_invalid',
        `evidence for ${draft.check} does not match the bundle schema`,
        parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
      );
    }
    const bundle = parsed.data;
    const env = signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify(bundle)), this.key);
    const envelope = canonicalEnvelope(env);
    const hash = envelopeHash(env);
    this.insertEvidence.run(bundle.seq, bundle.host_id, bundle.bundle_id, bundle.check, bundle.outcome, now, envelope, hash);
    this.queue.enqueue(bundle.bundle_id, envelope, destinations, now);
    this.upsertHead.run(bundle.host_id, bundle.seq, hash);
    return { bundle, envelope, envelopeHash: hash };
  }
}
