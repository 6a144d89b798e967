import Database from 'better-sqlite3';
import { closeSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { AgentError, ensureDir, errnoCode } from '../common/index.js';
import { MIGRATIONS } from './migrations.js';

export type StateDb = Database.Database;

/** SQLite page cache per connection, KiB. */
export const CACHE_KIB = 1024;

/**
 * Open (creating if needed) the state database: WAL, synchronous=FULL so a committed transaction
 * survives power loss, a busy timeout so the CLI and the agent can share it.
 */
export function openStateDb(path: string, options: { readonly?: boolean } = {}): StateDb {
  if (!options.readonly && path !== ':memory:') {
    ensureDir(dirname(path), 'stateDir');
    createPrivate(path);
  }
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
  // better-sqlite3 builds SQLite with a 16 MB page cache per connection, which fills as the
  // database grows. The agent's working set is the queue head and the chain head: 1 MiB is plenty
  // and keeps the agent's memory flat (bench/RESULTS.md).
  db.pragma(`cache_size = -${CACHE_KIB}`);
  const integrity = db.pragma('quick_check', { simple: true });
  if (integrity !== 'ok') {
    db.close();
    throw new AgentError('state_corrupt', `${path}: state database failed its integrity check (${String(integrity)})`);
  }
  migrate(db);
  return db;
}

/**
 * SQLite creates a new database file 0644 (less the umask) and its -wal and -shm files with the
 * database file's mode: created here first as 0600, none of them is ever readable by others,
 * whatever the state directory's own mode. An existing file keeps its mode.
 */
function createPrivate(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') return;
    throw new AgentError('state_open', `${path}: cannot create state database (${errnoCode(e) ?? (e as Error).message})`);
  }
  closeSync(fd);
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
