import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { AgentError } from '../common/index.js';
import { MIGRATIONS } from './migrations.js';

export type StateDb = Database.Database;

/**
 * Open (creating if needed) the state database: WAL, synchronous=FULL so a committed transaction
 * survives power loss, a busy timeout so the CLI and the agent can share it.
 */
export function openStateDb(path: string, options: { readonly?: boolean } = {}): StateDb {
  if (!options.readonly) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let db: StateDb;
  try {
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (e) {
    throw new AgentError('state_open', `${path}: cannot open state database (${(e as Error).message})`);
  }
  db.pragma('busy_timeout = 5000');
  if (options.readonly) return db;
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  const integrity = db.pragma('quick_check', { simple: true });
  if (integrity !== 'ok') {
    db.close();
    throw new AgentError('state_corrupt', `${path}: state database failed its integrity check (${String(integrity)})`);
  }
  migrate(db);
  return db;
}

function migrate(db: StateDb): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new AgentError('state_version', `state database schema ${current} is newer than this agent (${MIGRATIONS.length})`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

export function stateDbPath(stateDir: string): string {
  return `${stateDir}/state.db`;
}
