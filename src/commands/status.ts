import { openStateDb } from '../state/index.js';
import { readStatus, formatStatus } from '../observe/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';
import { existingStateDb, noStateLine } from './state-arg.js';

export const statusCommand: Command = {
  name: 'status',
  summary:
    'show the last poll, last check results, delivery per destination (failures, queue depth and age, dead letters), the evidence chain head, control plane freshness and receipts',
  usage: 'compliance-agent status --config C [--json]',
  async run(args) {
    const p = parseWithConfig(args, this.usage, { json: { type: 'boolean' } });
    if (!p.ok) return p.code;
    const state = existingStateDb(p.config.stateDir);
    if (state.kind === 'error') {
      printError(`error: ${state.message}`);
      return EXIT.failed;
    }
    if (state.kind === 'none') {
      process.stdout.write(p.values.json ? JSON.stringify({ state: null, stateDb: state.path }) + '\n' : noStateLine(state.path) + '\n');
      return EXIT.ok;
    }
    const db = openStateDb(state.path, { readonly: true });
    try {
      const status = readStatus(db, Date.now(), { controlPlaneMaxAgeMs: p.config.controlPlaneMaxAge * 1000 });
      process.stdout.write(p.values.json ? JSON.stringify(status, null, 2) + '\n' : formatStatus(status, Date.now()));
      return EXIT.ok;
    } finally {
      db.close();
    }
  },
};
