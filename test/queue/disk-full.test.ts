import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { AgentError } from '../../src/common/index.js';
import { openStateDb } from '../../src/state/index.js';
import { Outbox, flushDestination } from '../../src/queue/index.js';
import { tempDir } from '../helpers/tmp.js';

// A real filesystem that runs out: a 320 KiB tmpfs mounted over a temp dir (needs root, as CI has).
const dir = tempDir('ca-queue-full-');
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=320k,mode=0700', 'tmpfs', dir.path]);
afterAll(() => {
  execFileSync('umount', [dir.path]);
  dir.cleanup();
});

it('a full disk fails the group commit with a clear error, corrupts nothing, and recovers when space returns', async () => {
  const path = join(dir.path, 'state.db');
  let db = openStateDb(path);
  let outbox = new Outbox(db);
  const body = JSON.stringify({ payload: 'e'.repeat(1200) });
  const committed: string[] = [];
  let failure: unknown = null;
  for (let g = 0; g < 10_000 && failure === null; g++) {
    const ids = Array.from({ length: 5 }, (_, k) => `b-${g}-${k}`);
    try {
      outbox.batch(() => ids.forEach((id) => outbox.enqueue(id, body, ['mcp'], 1000)));
      committed.push(...ids);
    } catch (e) {
      failure = e;
    }
  }
  expect(failure).toBeInstanceOf(AgentError);
  expect(failure).toMatchObject({
    code: 'state_disk_full',
    message: expect.stringMatching(/^cannot commit an outbox batch: the state database's filesystem is full \(SQLITE_FULL\); the transaction was rolled back$/),
  });
  expect(committed.length).toBeGreaterThan(0);

  // Still full: a restart opens the database, which holds exactly the committed groups.
  db.close();
  db = openStateDb(path);
  outbox = new Outbox(db);
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  expect(db.prepare('SELECT bundle_id FROM outbox ORDER BY id').pluck().all()).toEqual(committed);

  // Space returns: enqueueing and delivery carry on, in order, nothing lost.
  execFileSync('mount', ['-o', 'remount,size=8m', dir.path]);
  outbox.enqueue('after', body, ['mcp'], 2000);
  const seen: string[] = [];
  const r = await flushDestination(outbox, 'mcp', async (items) => items.map((i) => (seen.push(i.bundleId), { kind: 'ok', receiptId: `r-${i.bundleId}` })), {
    batchSize: 100,
    now: () => 3000,
  });
  expect(r.stoppedBy).toBe('drained');
  expect(seen).toEqual([...committed, 'after']);
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  db.close();
});
