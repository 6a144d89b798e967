import type { Config } from '../config/index.js';
import { loadSecretKeyFile, type SecretKey } from '../crypto/index.js';
import { makeDraft, receiptKeysFromConfig } from '../agent/index.js';
import { openStateDb, stateLayout, type StateDb } from '../state/index.js';
import { EvidenceChain, checkpointEvidence, receiptAcknowledges, pruneEvidence, type PruneReport } from '../evidence/index.js';
import { Outbox, type Destination } from '../queue/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';
import { progress } from './progress.js';
import { existingStateDb, noStateLine } from './state-arg.js';

const DAY_MS = 86_400_000;
const NO_FACTS = { ruleset_hash: null, nixos_revision: null, derivation_digest: null, ntp_offset_ms: null };

/** Where a bundle chained outside the agent (the checkpoint) is queued: as the agent queues every bundle. */
function destinationsOf(config: Config): Destination[] {
  const reseller = config.deploymentMode === 'reseller';
  return ['mcp', ...(reseller && config.rmmWebhookUrl ? (['webhook'] as const) : []), ...(reseller && config.syslogTarget ? (['syslog'] as const) : [])];
}

/**
 * Prune as the prune unit does: only bundles with a receipt countersigned by a key in
 * mcpReceiptKeys, an unbroken run from the chain's start, and a signed checkpoint bundle chained
 * and queued for what went. Delivered outbox rows go after pruneRetentionDays.
 */
export function pruneStore(config: Config, db: StateDb, signingKey: SecretKey, now: number): PruneReport & { queueRows: number } {
  const outbox = new Outbox(db);
  const chain = new EvidenceChain(db, signingKey, outbox);
  const report = pruneEvidence(db, stateLayout(config.stateDir).evidence, { keepLast: config.evidenceRetention, minAgeDays: config.pruneRetentionDays }, now, {
    acknowledged: receiptAcknowledges(db, receiptKeysFromConfig(config)),
    checkpoint: (c) => chain.append([{ ...makeDraft(config, NO_FACTS, checkpointEvidence(c, now)), host_id: c.host_id }], destinationsOf(config), now),
  });
  // Delivered outbox rows keep their receipts as long as the evidence they acknowledge.
  const queueRows = outbox.pruneDone(now - config.pruneRetentionDays * DAY_MS);
  return { ...report, queueRows };
}

export const pruneCommand: Command = {
  name: 'prune',
  summary:
    'prune the local evidence store (keep evidenceRetention, never younger than pruneRetentionDays, only bundles with a countersigned MCP receipt) and chain a signed checkpoint',
  usage: 'compliance-agent prune --config C',
  async run(args) {
    const p = parseWithConfig(args, this.usage, {});
    if (!p.ok) return p.code;
    const state = existingStateDb(p.config.stateDir);
    if (state.kind === 'error') {
      printError(`error: ${state.message}`);
      return EXIT.failed;
    }
    if (state.kind === 'none') {
      process.stdout.write(`nothing to prune: ${noStateLine(state.path)}\n`);
      return EXIT.ok;
    }
    const key = loadSecretKeyFile(p.config.signingKeyFile);
    const bar = progress();
    bar.show(`pruning the evidence in ${stateLayout(p.config.stateDir).evidence} and delivered queue rows`, true);
    const db = openStateDb(state.path);
    try {
      const report = pruneStore(p.config, db, key, Date.now());
      bar.clear();
      const why =
        p.config.mcpReceiptKeys.length === 0 ? 'mcpReceiptKeys is empty, so no receipt is countersigned' : 'the MCP has not countersigned a receipt for them (or for an older one)';
      process.stdout.write(
        `pruned ${report.deleted} bundle(s); kept ${report.remaining}` +
          (report.keptUnacknowledged ? ` (${report.keptUnacknowledged} past retention kept: ${why})` : '') +
          report.checkpoints.map((c) => `; checkpoint for ${c.host_id} seq ${c.first_pruned_seq}..${c.last_pruned_seq}, last pruned ${c.last_pruned_hash}`).join('') +
          `; removed ${report.queueRows} delivered queue row(s)\n`,
      );
      return EXIT.ok;
    } finally {
      bar.clear();
      db.close();
    }
  },
};
