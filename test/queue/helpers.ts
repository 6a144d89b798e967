import { join } from 'node:path';
import { afterEach } from 'vitest';
import { openStateDb, type StateDb } from '../../src/state/index.js';
import { Outbox, type OutboxOptions } from '../../src/queue/index.js';
import { tempDir } from '../helpers/tmp.js';

/** A real state database in a fresh temp dir, closed and removed after each test. */
export function useStateDb(): {
  open: (options?: OutboxOptions) => { db: StateDb; outbox: Outbox; path: string };
  reopen: (options?: OutboxOptions) => { db: StateDb; outbox: Outbox };
} {
  const opened: StateDb[] = [];
  const dirs: (() => void)[] = [];
  let path = '';
  afterEach(() => {
    for (const db of opened.splice(0)) if (db.open) db.close();
    for (const cleanup of dirs.splice(0)) cleanup();
  });
  return {
    open(options) {
      const dir = tempDir('ca-queue-');
      dirs.push(dir.cleanup);
      path = join(dir.path, 'state.db');
      const db = openStateDb(path);
      opened.push(db);
      return { db, outbox: new Outbox(db, options), path };
    },
    reopen(options) {
      for (const db of opened) if (db.open) db.close();
      const db = openStateDb(path);
      opened.push(db);
      return { db, outbox: new Outbox(db, options) };
    },
  };
}

export function row(
  db: StateDb,
  id: number,
): { state: string; attempts: number; next_attempt_at: number; lease_until: number; last_error: string | null; dead_reason: string | null; receipt_id: string | null } {
  return db.prepare('SELECT state, attempts, next_attempt_at, lease_until, last_error, dead_reason, receipt_id FROM outbox WHERE id = ?').get(id) as ReturnType<typeof row>;
}
