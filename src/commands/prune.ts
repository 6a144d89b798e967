import { existsSync } from 'node:fs';
import { openStateDb, stateDbPath } from '../state/index.js';
import { pruneEvidence, evidenceDir } from '../evidence/index.js';
import { Outbox } from '../queue/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';

const DAY_MS = 86_400_000;

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'prune the local evidence store (keep evidenceRetention, never younger than pruneRetentionDays, never undelivered)',
  usage: 'compliance-agent prune --config C',
  async run(args) {
    const p = parseWithConfig(args, this.usage, {});
    if (!p.ok) return p.code;
    const path = stateDbPath(p.config.stateDir);
    if (!existsSync(path)) {
      printError(`${path}: no state yet (the agent has not run)`);
      return EXIT.failed;
    }
    const db = openStateDb(path);
    try {
      const now = Date.now();
      const report = pruneEvidence(db, evidenceDir(p.config.stateDir), { keepLast: p.config.evidenceRetention, minAgeDays: p.config.pruneRetentionDays }, now);
      // Delivered outbox rows keep their receipts as long as the evidence they acknowledge.
      const receipts = new Outbox(db).pruneDone(now - p.config.pruneRetentionDays * DAY_MS);
      process.stdout.write(
        `pruned ${report.deleted} bundle(s); kept ${report.remaining}` +
          (report.keptUndelivered ? ` (${report.keptUndelivered} past retention kept because the MCP has not acknowledged them)` : '') +
          `; removed ${receipts} delivered queue row(s)\n`,
      );
      return EXIT.ok;
    } finally {
      db.close();
    }
  },
};
