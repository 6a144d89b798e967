import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { AgentError } from '../../src/common/index.js';
import { readStatus } from '../../src/observe/index.js';
import { applyOperatorAction, hasDeadLetterBookkeeping, listDeadLetters, unalertedDeadLetters, unsignedOperatorActions, type OperatorIdentity } from '../../src/queue/index.js';
import { MIGRATIONS } from '../../src/state/migrations.js';
import { openStateDb } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';
import { row, useStateDb } from './helpers.js';

const T0 = 1_700_000_000_000;
const ALICE: OperatorIdentity = { user: 'alice', uid: 1000, sudoUser: null, sudoUid: null };
const env = useStateDb();

/** b1..b5 for the webhook and the MCP; the webhook refused b1..b3 for good, b4 and b5 wait behind. */
function refusedThree() {
  const opened = env.open();
  for (const id of ['b1', 'b2', 'b3', 'b4', 'b5']) opened.outbox.enqueue(id, `body-${id}`, ['mcp', 'webhook'], T0);
  const leased = opened.outbox.lease('webhook', 3, T0);
  for (const item of leased) opened.outbox.dead(item.id, `refused with 401: ${item.bundleId}`, T0 + 1);
  return opened;
}

describe('dead letters', () => {
  it('replay puts them back where they were: delivered before what was queued after them, attempts reset, alerted again if they die again', () => {
    const { db, outbox } = refusedThree();
    expect(listDeadLetters(db).map((d) => [d.destination, d.bundleId, d.reason])).toEqual([
      ['webhook', 'b1', 'refused with 401: b1'],
      ['webhook', 'b2', 'refused with 401: b2'],
      ['webhook', 'b3', 'refused with 401: b3'],
    ]);
    db.prepare('UPDATE outbox SET dead_alerted = 1').run();

    const action = applyOperatorAction(db, 'replay', { destination: 'webhook' }, 'secret fixed', ALICE, T0 + 10);
    expect(action.items.map((i) => i.bundleId)).toEqual(['b1', 'b2', 'b3']);
    expect(listDeadLetters(db)).toEqual([]);
    expect(outbox.lease('webhook', 10, T0 + 10).map((i) => [i.bundleId, i.attempts, i.body])).toEqual([
      ['b1', 0, 'body-b1'],
      ['b2', 0, 'body-b2'],
      ['b3', 0, 'body-b3'],
      ['b4', 0, 'body-b4'],
      ['b5', 0, 'body-b5'],
    ]);
    expect(row(db, action.items[0]!.id)).toMatchObject({ state: 'pending', dead_reason: null, last_error: null });
    outbox.dead(action.items[0]!.id, 'refused again', T0 + 11);
    expect(unalertedDeadLetters(db).map((d) => d.bundleId)).toEqual(['b1']);
    expect(unsignedOperatorActions(db)).toEqual([{ ...action, bundleId: null }]);
  });

  it('discard removes only the chosen ones and keeps the rest; an unknown id changes nothing at all', () => {
    const { db } = refusedThree();
    const [first, second] = listDeadLetters(db);
    expect(() => applyOperatorAction(db, 'discard', { ids: [first!.id, 999] }, null, ALICE, T0)).toThrow(AgentError);
    expect(listDeadLetters(db)).toHaveLength(3);
    expect(unsignedOperatorActions(db)).toEqual([]);
    // Another destination's dead letters are not found under an id of the webhook.
    expect(() => applyOperatorAction(db, 'discard', { destination: 'mcp', ids: [first!.id] }, null, ALICE, T0)).toThrow(/no dead letter with id \d+ for mcp; nothing was changed/);

    const action = applyOperatorAction(db, 'discard', { ids: [second!.id] }, 'RMM tenant deleted', ALICE, T0 + 5);
    expect(action).toMatchObject({ action: 'discard', reason: 'RMM tenant deleted', operator: ALICE, requestedAt: T0 + 5 });
    expect(listDeadLetters(db).map((d) => d.bundleId)).toEqual(['b1', 'b3']);
    expect(db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE bundle_id = 'b2'").get()).toEqual({ n: 1 });
    expect(() => applyOperatorAction(db, 'replay', { destination: 'mcp' }, null, ALICE, T0)).toThrow('no dead letters for mcp; nothing was changed');
  });

  it('a database an older agent wrote: status reads it without dead-letter details, the agent upgrades it keeping its dead letters', () => {
    const dir = tempDir('ca-dead-old-');
    try {
      const path = join(dir.path, 'state.db');
      const old = new Database(path);
      old.exec(MIGRATIONS[0]!);
      old.pragma('user_version = 1');
      old
        .prepare(
          "INSERT INTO outbox (destination, bundle_id, body, state, created_at, next_attempt_at, dead_reason) VALUES ('webhook', 'b1', 'x', 'dead', 1, 1, 'refused with 401: no')",
        )
        .run();
      old.close();
      const ro = openStateDb(path, { readonly: true });
      expect(hasDeadLetterBookkeeping(ro)).toBe(false);
      expect(readStatus(ro, T0)).toMatchObject({ deadLetters: [], operatorActionsAwaitingEvidence: [], delivery: [{ destination: 'webhook', dead: 1, state: 'unknown' }] });
      ro.close();
      const upgraded = openStateDb(path);
      expect(hasDeadLetterBookkeeping(upgraded)).toBe(true);
      // Dead letters from before the upgrade were never alerted: the next cycle alerts them.
      expect(unalertedDeadLetters(upgraded).map((d) => [d.bundleId, d.reason])).toEqual([['b1', 'refused with 401: no']]);
      upgraded.close();
    } finally {
      dir.cleanup();
    }
  });
});
