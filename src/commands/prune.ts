import { openStateDb } from '../state/index.js';
import { pruneEvidence, evidenceDir } from '../evidence/index.js';
import { Outbox } from '../queue/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';
import { progress } from './progress.js';
import { existingStateDb, noStateLine } from './state-arg.js';

const DAY_MS = 86_400_000;

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'prune the local evidence store (keep evidenceRetention, never younger than pruneRetentionDays, never undelivered)',
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
    const bar = progress();
    bar.show(`pruning the evidence in ${evidenceDir(p.config.stateDir)} and delivered queue rows`, true);
    const db = openStateDb(state.path);
    try {
      const now = Date.now();
      const report = pruneEvidence(db, evidenceDir(p.config.stateDir), { keepLast: p.config.evidenceRetention, minAgeDays: p.config.pruneRetentionDays }, now);
      // Delivered outbox rows keep their receipts as long as the evidence they acknowledge.
      const receipts = new Outbox(db).pruneDone(now - p.config.pruneRetentionDays * DAY_MS);
      bar.clear();
      process.stdout.write(
        `pruned ${report.deleted} bundle(s); kept ${report.remaining}` +
          (report.keptUndelivered ? ` (${report.keptUndelivered} past retention kept because the MCP has not acknowledged them)` : '') +
          `; removed ${receipts} delivered queue row(s)\n`,
      );
      return EXIT.ok;
    } finally {
      bar.clear();
      db.close();
    }
  },
};
