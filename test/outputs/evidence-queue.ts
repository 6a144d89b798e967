import { join } from 'node:path';
import { generateKeyFiles, loadSecretKeyFile } from '../../src/crypto/index.js';
import { EvidenceChain, type ChainedEvidence, type EvidenceDraft } from '../../src/evidence/index.js';
import { flushDestination, Outbox, type DeliveryResult, type Destination, type FlushReport, type OutboxItem } from '../../src/queue/index.js';
import { openStateDb, type StateDb } from '../../src/state/index.js';
import { sampleDraft } from '../helpers/evidence.js';

/**
 * Signed, chained evidence in a real SQLite outbox, as the agent queues it, with a manual clock so
 * a retry can be made due without waiting out the backoff.
 */
export class EvidenceQueue {
  readonly db: StateDb;
  readonly outbox: Outbox;
  private readonly chain: EvidenceChain;
  clock = Date.now();

  constructor(dir: string) {
    const keys = generateKeyFiles('appliance-1', join(dir, 'keys'));
    this.db = openStateDb(join(dir, 'state.db'));
    this.outbox = new Outbox(this.db, { random: () => 0.5 });
    this.chain = new EvidenceChain(this.db, loadSecretKeyFile(keys.secretPath), this.outbox);
  }

  add(destinations: readonly Destination[], drafts: readonly Partial<EvidenceDraft>[]): ChainedEvidence[] {
    return this.chain.append(
      drafts.map((d) => sampleDraft({ deployment_mode: 'reseller', reseller_id: 'msp-alpha', ...d })),
      destinations,
      this.clock,
    );
  }

  flush(destination: Destination, deliver: (items: OutboxItem[]) => Promise<DeliveryResult[]>, batchSize = 50): Promise<FlushReport> {
    return flushDestination(this.outbox, destination, deliver, { batchSize, now: () => this.clock });
  }

  /** Jump past any backoff so everything pending is due again. */
  advance(ms = 60 * 60_000): void {
    this.clock += ms;
  }

  stats(destination: Destination) {
    return this.outbox.stats(this.clock).find((s) => s.destination === destination)!;
  }

  close(): void {
    this.db.close();
  }
}
