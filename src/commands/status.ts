import { existsSync } from 'node:fs';
import { openStateDb, stateDbPath } from '../state/index.js';
import { readStatus, formatStatus } from '../observe/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'show the last poll, last check results, delivery per destination (failures, queue depth and age, dead letters), and the evidence chain head',
  usage: 'compliance-agent status --config C [--json]',
  async run(args) {
    const p = parseWithConfig(args, this.usage, { json: { type: 'boolean' } });
    if (!p.ok) return p.code;
    const path = stateDbPath(p.config.stateDir);
    if (!existsSync(path)) {
      printError(`${path}: no state yet (the agent has not run)`);
      return EXIT.failed;
    }
    const db = openStateDb(path, { readonly: true });
    try {
      const status = readStatus(db, Date.now());
      process.stdout.write(p.values.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status, Date.now()));
      return EXIT.ok;
    } finally {
      db.close();
    }
  },
};
