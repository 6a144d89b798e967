import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Site } from './site.js';

// Root's own memory decides what is new: the agent's refusal, its database and everything else
// it can reach count for nothing. The agent user here drops signed orders directly.
let site: Site;
beforeAll(() => {
  site = new Site();
  site.init();
});
afterAll(() => site?.cleanup());

describe("replay and rollback against the healer's own state", () => {
  it('a superseded order (lower sequence, never forwarded by the agent) dropped directly is refused by root', () => {
    const newer = site.order('heal', { checks: ['services'] }, { sequence: 50 });
    const older = site.order('heal', { checks: ['services'] }, { sequence: 40 });
    site.stopUnit('clinic-app.service');
    const first = site.restartRequest(newer);
    site.drop(`${first.requestId}.json`, first.text);
    expect(site.heal().map((r) => r.outcome)).toEqual(['healed']);

    site.stopUnit('clinic-app.service');
    const stale = site.restartRequest(older);
    site.drop(`${stale.requestId}.json`, stale.text);
    const actions = site.actions().length;
    const [r] = site.heal();
    expect(r).toMatchObject({ outcome: 'rejected', order_id: older.orderId, action_taken: [] });
    expect(r!.reason).toBe('stale_sequence: sequence 40 is not above 50, the last the healer recorded for site clinic-001');
    expect(site.actions().length).toBe(actions);
  });

  it('deleting everything the agent user can reach does not let an applied order run twice', () => {
    const order = site.order('heal', { checks: ['services'] });
    site.stopUnit('clinic-app.service');
    const req = site.restartRequest(order);
    site.drop(`${req.requestId}.json`, req.text);
    expect(site.heal().map((r) => r.outcome)).toEqual(['healed']);

    // Everything the agent can delete: its state directory, its files in the drop box. Results
    // and the healer's state are out of its reach (the attempt fails).
    expect(site.asAgent(`rm -rf '${site.stateDir}'/* '${site.requests}'/* '${site.requests}'/.[!.]* '${site.results}'/* '${site.healDir}/state' 2>/dev/null; true`).code).toBe(0);
    expect(readdirSync(site.requests)).toEqual([]);

    site.stopUnit('clinic-app.service');
    const actions = site.actions().length;
    // The same request again, and a fresh request id for the same signed order.
    site.drop(`${req.requestId}.json`, req.text);
    const again = site.restartRequest(order);
    site.drop(`${again.requestId}.json`, again.text);
    const results = site.heal();
    expect(results.map((r) => [r.request_id, r.outcome])).toEqual([[again.requestId, 'rejected']]);
    expect(results[0]!.reason).toBe(`replayed: order ${order.orderId} was already received by the healer (done)`);
    expect(site.actions().length).toBe(actions);
    // What it could not delete: root's results and state.
    expect(readdirSync(site.results).length).toBeGreaterThan(0);
    expect(readdirSync(join(site.healDir, 'state'))).toContain('healer.db');
  });

  it('an unreadable healer state stops the healer loudly; it is never read as empty', () => {
    const other = new Site();
    try {
      other.init();
      const db = join(other.healDir, 'state', 'healer.db');
      chmodSync(db, 0o000);
      writeFileSync(db, 'garbage');
      const order = other.order('heal', { checks: ['services'] });
      other.stopUnit('clinic-app.service');
      const req = other.restartRequest(order);
      other.drop(`${req.requestId}.json`, req.text);
      let r = other.cli(['--json']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the healer's state cannot be used/);
      rmSync(db);
      r = other.cli(['--json']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the healer's state is missing; it is created once at install \(heal-apply --init\) and never assumed empty/);
      expect(other.actions()).toEqual([]);
      // --init refuses to replace a state that exists.
      other.init();
      expect(other.cli(['--init']).code).toBe(1);
    } finally {
      other.cleanup();
    }
  });
});
