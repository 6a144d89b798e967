import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { HealerState, Spool, type HealAction, type HealRequest } from '../../src/heal/index.js';
import { healLayout } from '../../src/state/index.js';
import type { Order } from '../../src/orders/index.js';
import type { Envelope } from '../../src/crypto/index.js';
import { type Host } from '../../src/host/index.js';
import { SAMPLE_FLAKE_SOURCE } from '../../testing/index.js';
import { iso, makeKey, signPayload } from '../orders/fixtures.js';
import { setup, type Setup } from './fixtures.js';

let s: Setup | undefined;
afterEach(() => {
  s?.cleanup();
  s = undefined;
});

const EVIL_REV = 'e'.repeat(40);
const EVIL_REF = `github:attacker/flake?rev=${EVIL_REV}#pwn`;
const SITE_REV = 'd'.repeat(40);
const orderIdOf = (env: Envelope) => (JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { order_id: string }).order_id;

/** Write a request as a (possibly compromised) agent could, bypassing the agent's own checks. */
function spool(t: Setup, env: Envelope, actions: HealAction[], overrides: Partial<HealRequest> = {}): string {
  const request: HealRequest = { version: 1, request_id: randomUUID(), created_at: iso(t.sim.now()), envelope: env, plan: { order_id: orderIdOf(env), actions }, ...overrides };
  new Spool(t.healDir).write(request);
  return request.request_id;
}

/** Run the healer and return its only result, asserting it executed no action at all. */
async function healNothing(t: Setup) {
  t.sim.clearExecuted();
  const run = await t.heal();
  expect(t.sim.actions()).toEqual([]);
  expect(run.results).toHaveLength(1);
  return run.results[0]!.result;
}

describe('heal-apply refuses what the signed order and the baseline do not allow, and acts on nothing', () => {
  it('an envelope altered after the agent wrote the request (order changed, signature kept): bad_signature', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    const handled = await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    const path = join(healLayout(s.healDir).requests, `${handled.requestId}.json`);
    const req = JSON.parse(readFileSync(path, 'utf8')) as HealRequest;
    const payload = JSON.parse(Buffer.from(req.envelope.payload, 'base64').toString()) as Record<string, unknown>;
    payload.type = 'apply_baseline';
    payload.params = { revision: EVIL_REV, flakeRef: EVIL_REF };
    req.envelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    req.plan.actions = [{ kind: 'rebuild_switch', flakeRef: EVIL_REF }];
    writeFileSync(path, JSON.stringify(req));
    const r = await healNothing(s);
    expect(r).toMatchObject({ outcome: 'rejected', action_taken: [] });
    expect(r.reason).toMatch(/^bad_signature/);
  });

  it('an envelope swapped for one signed by an untrusted key: unknown_key', async () => {
    s = setup();
    const forged = signPayload(JSON.parse(Buffer.from(s.order('rollback', {}).payload, 'base64').toString()), makeKey('attacker').secret);
    spool(s, forged, [{ kind: 'rollback' }]);
    expect((await healNothing(s)).reason).toMatch(/^unknown_key/);
  });

  it("a key removed from the healer's trusted keys stops its orders", async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    spool(s, s.order('heal', { checks: ['services'] }), [{ kind: 'restart_unit', unit: 'sshd.service' }]);
    s.sim.clearExecuted();
    const run = await s.heal({ trustedKeys: [makeKey('msp-2027').pub] });
    expect(s.sim.actions()).toEqual([]);
    expect(run.results[0]?.result.reason).toMatch(/^unknown_key/);
  });

  it('a unit the baseline does not name: plan_not_allowed', async () => {
    s = setup();
    spool(s, s.order('heal', { checks: ['services'] }), [{ kind: 'restart_unit', unit: 'evil.service' }]);
    const r = await healNothing(s);
    expect(r.outcome).toBe('rejected');
    expect(r.reason).toBe(`plan_not_allowed: "systemctl restart -- evil.service" is not an action heal order ${r.order_id} and the baseline allow`);
  });

  it('a flakeRef neither signed in the order nor named by the baseline: plan_not_allowed', async () => {
    s = setup();
    const patching = s.order('heal', { checks: ['patching'] });
    spool(s, patching, [{ kind: 'rebuild_switch', flakeRef: EVIL_REF }]);
    expect((await healNothing(s)).reason).toBe(
      `plan_not_allowed: "build and activate --flake ${EVIL_REF}" is not an action heal order ${orderIdOf(patching)} and the baseline allow`,
    );
    spool(s, s.order('apply_baseline', { revision: SITE_REV, flakeRef: `${SAMPLE_FLAKE_SOURCE}?rev=${SITE_REV}#appliance` }), [
      { kind: 'rebuild_switch', flakeRef: s.baseline.patching.flakeRef },
    ]);
    expect((await healNothing(s)).reason).toMatch(/^plan_not_allowed/);
  });

  it('an action for a check the order does not name (services order, rebuild planned): plan_not_allowed', async () => {
    s = setup();
    spool(s, s.order('heal', { checks: ['services'] }), [{ kind: 'rebuild_switch', flakeRef: s.baseline.patching.flakeRef }]);
    expect((await healNothing(s)).reason).toMatch(/^plan_not_allowed/);
  });

  it('a plan for another order, a duplicated action, or a run_checks order: refused', async () => {
    s = setup();
    spool(s, s.order('rollback', {}), [{ kind: 'rollback' }], { plan: { order_id: randomUUID(), actions: [{ kind: 'rollback' }] } });
    expect((await healNothing(s)).reason).toMatch(/^plan_not_allowed: the plan is for order/);
    spool(s, s.order('rollback', {}), [{ kind: 'rollback' }, { kind: 'rollback' }]);
    expect((await healNothing(s)).reason).toMatch(/^plan_not_allowed: "switch to the previous generation" appears twice/);
    spool(s, s.order('run_checks', {}), [{ kind: 'rollback' }]);
    expect((await healNothing(s)).reason).toMatch(/^plan_not_allowed/);
  });

  it('an order that expired between the agent and the healer: expired', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    s.sim.advance(16 * 60_000);
    const r = await healNothing(s);
    expect(r.reason).toMatch(/^expired: order expired at/);
  });

  it('an order for another host: wrong_host', async () => {
    s = setup();
    spool(s, s.order('rollback', {}, { host_id: 'other-appliance' }), [{ kind: 'rollback' }]);
    expect((await healNothing(s)).reason).toMatch(/^wrong_host/);
  });

  it('a replayed request (same request again after it was applied) and a new request for an applied order: replayed', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    const handled = await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    const path = join(healLayout(s.healDir).requests, `${handled.requestId}.json`);
    const saved = readFileSync(path);
    expect((await s.heal()).results[0]?.result.outcome).toBe('healed');
    await s.collect();

    // The same request id again: root answered it once and never reads it again.
    s.sim.stopService('sshd.service');
    writeFileSync(path, saved);
    s.sim.clearExecuted();
    expect((await s.heal()).results).toEqual([]);
    expect(s.sim.actions()).toEqual([]);

    const req = JSON.parse(saved.toString()) as HealRequest;
    spool(s, req.envelope, req.plan.actions);
    const other = await healNothing(s);
    expect(other.reason).toBe(`replayed: order ${req.plan.order_id} was already received by the healer (done)`);
  });

  it('an order the healer began but never finished is reported interrupted once and never run again', async () => {
    s = setup();
    const env = s.order('rollback', {});
    const order = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Order;
    const state = HealerState.open(healLayout(s.healDir).healerDb);
    state.recordOrder(order, randomUUID(), 'applying', env, s.sim.now());
    state.close();
    const r = await healNothing(s);
    expect(r).toMatchObject({ outcome: 'failed', order_id: order.order_id });
    expect(r.reason).toMatch(/^interrupted/);
    // Dropped again by a compromised agent: a replay, not a second run.
    spool(s, env, [{ kind: 'rollback' }]);
    expect((await healNothing(s)).reason).toMatch(/^replayed: .*\(interrupted\)/);
  });

  it("a healer killed mid-switch: the next run reports the generation that ran before, from root's state on disk", async () => {
    s = setup();
    const t = s;
    const before = t.sim.currentGeneration().number;
    // The activation never returns: this healer run is as good as killed once it is under way.
    let activating!: () => void;
    const reached = new Promise<void>((r) => (activating = r));
    const dying: Host = {
      exec: (command, args, options) => {
        if (!command.endsWith('/switch-to-configuration')) return t.sim.exec(command, args, options);
        activating();
        return new Promise(() => {});
      },
      readFile: (path, max) => t.sim.readFile(path, max),
      stat: (path) => t.sim.stat(path),
      readlink: (path) => t.sim.readlink(path),
      realpath: (path) => t.sim.realpath(path),
      now: () => t.sim.now(),
      hostname: () => t.sim.hostname(),
    };
    const env = t.order('rollback', {});
    spool(t, env, [{ kind: 'rollback' }]);
    void t.heal({ host: dying });
    await reached;
    t.sim.clearExecuted();
    const results = (await t.heal()).results.map((x) => x.result);
    expect(t.sim.actions()).toEqual([]);
    expect(results.map((r) => [r.outcome, r.order_id])).toEqual([
      ['failed', orderIdOf(env)],
      ['rejected', orderIdOf(env)],
    ]);
    expect(results[0]!.reason).toMatch(new RegExp(`^interrupted: .*; generation ${before} was running when it began$`));
    // The request it never answered is a replay now, not a second run.
    expect(results[1]!.reason).toMatch(/^replayed: .*\(interrupted\)/);
  });

  it('a missing or corrupt healer state is refused loudly, never read as empty', async () => {
    s = setup();
    spool(s, s.order('rollback', {}), [{ kind: 'rollback' }]);
    const db = healLayout(s.healDir).healerDb;
    writeFileSync(db, 'this is not a database, it is garbage of the same size as a header');
    s.sim.clearExecuted();
    await expect(s.heal()).rejects.toThrow(/the healer's state cannot be used/);
    rmSync(db);
    await expect(s.heal()).rejects.toThrow(/the healer's state is missing; .* never assumed empty/);
    expect(s.sim.actions()).toEqual([]);
  });

  it('a symlink planted in the drop box is not followed, garbage is refused, stray names are ignored and left', async () => {
    s = setup();
    const dir = healLayout(s.healDir).requests;
    const secret = join(s.stateDir, 'secret.json');
    writeFileSync(secret, JSON.stringify({ token: 'do-not-echo' }));
    symlinkSync(secret, join(dir, `${randomUUID()}.json`));
    let r = await healNothing(s);
    expect(r.reason).toBe('bad_request: not a regular file');
    expect(JSON.stringify(r)).not.toContain('do-not-echo');
    writeFileSync(join(dir, `${randomUUID()}.json`), '{not json');
    r = await healNothing(s);
    expect(r.reason).toBe('bad_request: not JSON');
    writeFileSync(join(dir, `${randomUUID()}.json`), JSON.stringify({ version: 1, request_id: 'x', shell: 'rm -rf /' }));
    r = await healNothing(s);
    expect(r.reason).toMatch(/^bad_request: /);
    expect(r.reason).not.toContain('shell');
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    const run = await s.heal();
    expect(run.ignored).toBe(1);
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('hello');
  });
});
