import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordHealerFailure, HEAL_RESULT_BOUND_MS, type HealerDeps } from '../../src/heal/index.js';
import { healLayout } from '../../src/state/index.js';
import { CheckCadence, runChecks } from '../../src/checks/index.js';
import { SAMPLE_FLAKE_SOURCE } from '../../testing/index.js';
import { activateSteps, assertValidDrafts, rollbackSteps, setup, type Setup } from './fixtures.js';

let s: Setup | undefined;
afterEach(() => {
  s?.cleanup();
  s = undefined;
});

/** The agent takes the order this cycle, then the healer runs, then the agent collects the result. */
async function orderThroughHealer(t: Setup, envelope: unknown, extra: Partial<HealerDeps> = {}) {
  const handled = await t.handleOrder(envelope, await t.cycle());
  expect(handled.accepted).toBe(true);
  t.sim.clearExecuted();
  const run = await t.heal(extra);
  const collected = await t.collect();
  assertValidDrafts(collected.drafts);
  return { handled, run, result: run.results[0]?.result, drafts: collected.drafts };
}

/** The running system drifts from the baseline: someone switched to an unmanaged build. */
function driftPatching(t: Setup): number {
  return t.sim.setRunningRevision('0000000000000000000000000000000000000000').number;
}

describe('heal-apply acts from the fixed repertoire and health-checks', () => {
  it('checks fresh before and after acting, even right after the agent reused its results', async () => {
    s = setup();
    const t = s;
    const cadence = new CheckCadence();
    const agentCycle = () => runChecks({ host: t.sim, config: t.config, baseline: t.baseline }, undefined, { cadence });
    await agentCycle();
    t.sim.clearExecuted();
    await agentCycle();
    const reused = t.sim.executed.map((e) => e.command);
    expect(reused).not.toContain('nixos-version');
    t.sim.stopService('postgresql.service');
    expect((await t.handleOrder(t.order('heal', { checks: ['services'] }), await t.cycle())).accepted).toBe(true);
    t.sim.clearExecuted();
    expect((await t.heal()).results[0]?.result.outcome).toBe('healed');
    const healerRan = t.sim.executed.map((e) => [e.command, ...e.args].join(' '));
    // Before and after the restart, every check's commands: the healer keeps no memory of results.
    for (const line of ['nixos-version --json', 'lsblk --json -o NAME,TYPE,FSTYPE,MOUNTPOINTS', 'chronyc -c tracking']) {
      expect(healerRan.filter((l) => l === line).length).toBeGreaterThanOrEqual(2);
    }
  });

  it('restarts a stopped required unit: healed, exactly that command, evidence with pre/post state', async () => {
    s = setup();
    s.sim.stopService('postgresql.service');
    const env = s.order('heal', { checks: ['services'] });
    const { handled, result, drafts } = await orderThroughHealer(s, env);
    expect(handled.drafts).toEqual([]);
    expect(result?.outcome).toBe('healed');
    expect(s.sim.actions()).toEqual(['systemctl restart -- postgresql.service']);
    expect(drafts).toHaveLength(1);
    expect(drafts[0]).toMatchObject({ check: 'services', outcome: 'healed', rollback_available: true });
    expect(drafts[0]!.order_id).toBe(result?.order_id);
    expect(drafts[0]!.action_taken).toEqual([{ command: 'systemctl', args: ['restart', '--', 'postgresql.service'], status: 'ok', exit_code: 0, duration_ms: expect.any(Number) }]);
    expect(drafts[0]!.pre_state).toMatchObject({ checks: { services: { status: 'drift', drift_units: ['postgresql.service'] } } });
    expect(drafts[0]!.post_state).toMatchObject({ checks: { services: { status: 'compliant' } } });
    // The agent removed its answered request; the result stays in root's directory, read once.
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);
    expect(readdirSync(healLayout(s.healDir).results)).toHaveLength(1);
    expect((await s.collect()).drafts).toEqual([]);
  });

  it('re-triggers the baseline backup unit when the backup is too old', async () => {
    s = setup();
    s.sim.setBackupAge(40);
    const { result } = await orderThroughHealer(s, s.order('heal', { checks: ['backup'] }));
    expect(result?.outcome).toBe('healed');
    expect(s.sim.actions()).toEqual(['systemctl start -- restic-backups-appliance.service']);
  });

  it('switches back to the baseline flake when patching drifted: healed on a new generation', async () => {
    s = setup();
    const drifted = driftPatching(s);
    const { result } = await orderThroughHealer(s, s.order('heal', { checks: ['patching'] }));
    expect(result?.outcome).toBe('healed');
    expect(s.sim.actions()).toEqual(activateSteps(s.sim.currentGeneration().storePath));
    expect(s.sim.currentGeneration().number).toBe(drifted + 1);
    expect(s.sim.currentGeneration().configurationRevision).toBe(s.baseline.patching.configurationRevision);
    expect(result?.pre_state).toMatchObject({ generation: drifted });
    expect(result?.post_state).toMatchObject({ generation: drifted + 1, checks: { patching: { status: 'compliant' } } });
  });
});

describe('a failed switch or failed health check ends rolled back', () => {
  it('unhealthy generation: the health check fails within rebuildHealthCheckTimeout, rolled_back to the previous generation', async () => {
    s = setup();
    const drifted = driftPatching(s);
    s.sim.scriptRebuild({ mode: 'unhealthy', failUnit: 'postgresql.service' });
    const before = s.sim.now();
    const { result, drafts } = await orderThroughHealer(s, s.order('heal', { checks: ['patching'] }));
    expect(result?.outcome).toBe('rolled_back');
    expect(result?.reason).toMatch(
      /health check failed within 60 s after switching to generation \d+: services: .*postgresql\.service \(failed\).*; rolled back to generation \d+/,
    );
    const built = s.sim.listGenerations().at(-1)!.storePath;
    expect(s.sim.actions()).toEqual([...activateSteps(built), ...rollbackSteps(drifted)]);
    expect(s.sim.currentGeneration().number).toBe(drifted);
    expect(s.sim.now() - before).toBeGreaterThanOrEqual(60_000);
    expect(drafts[0]).toMatchObject({ outcome: 'rolled_back', check: 'patching', rollback_available: true });
    expect(drafts[0]!.action_taken.map((a) => [a.command.split('/').pop(), a.status])).toEqual([
      ['nix', 'ok'],
      ['nix-env', 'ok'],
      ['switch-to-configuration', 'ok'],
      ['nix-env', 'ok'],
      ['switch-to-configuration', 'ok'],
    ]);
  });

  it('rebuild failure during activation (exit 4 after the profile switched): rolled_back', async () => {
    s = setup();
    const drifted = driftPatching(s);
    s.sim.scriptRebuild('activation_fail');
    const { result } = await orderThroughHealer(s, s.order('heal', { checks: ['patching'] }));
    expect(result?.outcome).toBe('rolled_back');
    expect(result?.reason).toMatch(/exited 4 \(warning: error\(s\) occurred while switching to the new configuration\) after activating generation \d+; rolled back/);
    expect(s.sim.currentGeneration().number).toBe(drifted);
    expect(result?.action_taken.map((a) => a.exit_code)).toEqual([0, 0, 4, 0, 0]);
  });

  it('health-check timeout: a switch that hangs in activation is killed at the timeout and rolled_back', async () => {
    s = setup();
    const drifted = driftPatching(s);
    s.sim.scriptRebuild('activation_hang');
    const { result } = await orderThroughHealer(s, s.order('heal', { checks: ['patching'] }), { timeouts: { rollbackMs: 600_000 } });
    expect(result?.outcome).toBe('rolled_back');
    expect(result?.reason).toMatch(/switch-to-configuration switch did not finish within 600 s and was killed after activating generation/);
    expect(result?.action_taken[2]).toMatchObject({ status: 'timeout', exit_code: null });
    expect(s.sim.currentGeneration().number).toBe(drifted);
  });

  it('rebuild failure while building: nothing was activated, so nothing is rolled back and the outcome says so', async () => {
    s = setup();
    const drifted = driftPatching(s);
    s.sim.scriptRebuild('fail');
    const { result } = await orderThroughHealer(s, s.order('heal', { checks: ['patching'] }));
    expect(result?.outcome).toBe('failed');
    expect(result?.reason).toMatch(/^nix .* exited 1 .*; nothing was activated/);
    expect(s.sim.actions()).toEqual([]);
    expect(s.sim.currentGeneration().number).toBe(drifted);
    expect(result?.rollback_available).toBe(true);
  });

  it('a rebuild that hangs while building is killed at its timeout; still on the old generation', async () => {
    s = setup();
    const drifted = driftPatching(s);
    s.sim.scriptRebuild('hang');
    const { result } = await orderThroughHealer(s, s.order('heal', { checks: ['patching'] }), { timeouts: { switchMs: 600_000 } });
    expect(result?.outcome).toBe('failed');
    expect(result?.reason).toMatch(/did not finish within 600 s and was killed; nothing was activated/);
    expect(s.sim.currentGeneration().number).toBe(drifted);
  });

  it('when the rollback fails too, the outcome is failed and names both failures', async () => {
    s = setup();
    driftPatching(s);
    s.sim.scriptRebuild('unhealthy');
    s.sim.scriptRollback('fail');
    const { result } = await orderThroughHealer(s, s.order('heal', { checks: ['patching'] }));
    expect(result?.outcome).toBe('failed');
    expect(result?.reason).toMatch(/health check failed .*; rollback failed too: nix-env -p \/nix\/var\/nix\/profiles\/system --switch-generation \d+ exited 1/);
  });

  it('apply_baseline: a flake that builds another revision than the one signed is refused before activation', async () => {
    s = setup();
    const signed = 'b'.repeat(40);
    const ref = `${SAMPLE_FLAKE_SOURCE}?ref=next&rev=${signed}#appliance`;
    const current = s.sim.currentGeneration();
    s.sim.defineFlake(ref, {
      configurationRevision: 'a'.repeat(40),
      release: current.release,
      nixpkgsRevision: current.nixpkgsRevision,
      units: current.units,
      ruleset: current.ruleset,
    });
    const { result } = await orderThroughHealer(s, s.order('apply_baseline', { revision: signed, flakeRef: ref }));
    expect(result?.outcome).toBe('rejected');
    expect(result?.reason).toMatch(
      new RegExp(`^revision_mismatch: /nix/store/\\S+ reports configurationRevision ${'a'.repeat(40)}, the order signed ${signed}; nothing was activated$`),
    );
    expect(s.sim.activations()).toEqual([]);
    expect(s.sim.actions()).toEqual([]);
    expect(s.sim.currentGeneration().number).toBe(current.number);
  });

  it('apply_baseline: the signed revision reached and healthy is healed (even though it leaves the baseline)', async () => {
    s = setup();
    const rev = 'c'.repeat(40);
    const ref = `${SAMPLE_FLAKE_SOURCE}?ref=next&rev=${rev}#appliance`;
    const current = s.sim.currentGeneration();
    s.sim.defineFlake(ref, { configurationRevision: rev, release: current.release, nixpkgsRevision: current.nixpkgsRevision, units: current.units, ruleset: current.ruleset });
    const { result } = await orderThroughHealer(s, s.order('apply_baseline', { revision: rev, flakeRef: ref }));
    expect(result?.outcome).toBe('healed');
    expect(s.sim.currentGeneration().configurationRevision).toBe(rev);
  });

  it('rollback order: switches to the previous generation and checks its health', async () => {
    s = setup();
    const before = s.sim.currentGeneration().number;
    const { result } = await orderThroughHealer(s, s.order('rollback', {}));
    expect(result?.outcome).toBe('healed');
    expect(s.sim.actions()).toEqual(rollbackSteps(before - 1));
    expect(s.sim.currentGeneration().number).toBe(before - 1);
  });
});

describe('crash safety of the drop box', () => {
  it('a request answered once is never answered or run again, even when the agent drops it again', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    const [request] = readdirSync(healLayout(s.healDir).requests);
    const saved = readFileSync(join(healLayout(s.healDir).requests, request!));
    const first = await s.heal();
    expect(first.results[0]?.result.outcome).toBe('healed');
    await s.collect();
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);
    writeFileSync(join(healLayout(s.healDir).requests, request!), saved);
    s.sim.clearExecuted();
    s.sim.stopService('sshd.service');
    const second = await s.heal();
    expect(second.results).toEqual([]);
    expect(s.sim.actions()).toEqual([]);
  });

  it('results are read once: a crash before the evidence is chained re-reads them; once recorded they are not read again', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    await s.heal();
    const first = await s.collectResults(await s.cycle());
    const again = await s.collectResults(await s.cycle());
    expect(first.drafts.map((d) => d.outcome)).toEqual(['healed']);
    expect(again.drafts.map((d) => d.order_id)).toEqual(first.drafts.map((d) => d.order_id));
    again.record();
    again.ack();
    expect((await s.collectResults(await s.cycle())).drafts).toEqual([]);
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);
  });

  it('a disruptive heal outside the window: held by root, one deferred bundle, then one healed bundle when the window opens', async () => {
    s = setup({ now: Date.UTC(2026, 10, 23, 1, 55, 0) });
    s.sim.setRunningRevision('9999999999999999999999999999999999999999');
    const env = s.order('heal', { checks: ['patching'] });
    expect((await s.handleOrder(env, await s.cycle())).drafts).toEqual([]);
    await s.heal();
    expect((await s.collect()).drafts.map((d) => d.outcome)).toEqual(['deferred']);
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);
    s.sim.setNow(Date.UTC(2026, 10, 23, 2, 1, 0));
    await s.heal();
    const done = await s.collect();
    expect(done.drafts.map((d) => d.outcome)).toEqual(['healed']);
    await s.heal();
    expect((await s.collect()).drafts).toEqual([]);
  });
});

describe('the agent notices a healer that does not answer', () => {
  it('a request with no result after the bound is failed evidence, reported once; a later result is still reported', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    const handled = await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    expect((await s.collect()).drafts).toEqual([]);
    const file = join(healLayout(s.healDir).requests, `${handled.requestId}.json`);
    const old = (Date.now() - HEAL_RESULT_BOUND_MS - 60_000) / 1000;
    utimesSync(file, old, old);
    const late = (await s.collect()).drafts;
    assertValidDrafts(late);
    expect(late).toHaveLength(1);
    expect(late[0]).toMatchObject({ check: 'order', outcome: 'failed' });
    expect(late[0]!.reason).toMatch(new RegExp(`^heal request ${handled.requestId} has no result from the healer after \\d+ min`));
    expect((await s.collect()).drafts).toEqual([]);
    s.sim.advance(60_000);
    await s.heal();
    expect((await s.collect()).drafts.map((d) => d.outcome)).toEqual(['healed']);
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);
  });

  it('results are read before overdue requests are counted: a late answer in the same collect is reported, not also overdue', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    const handled = await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    const old = (Date.now() - HEAL_RESULT_BOUND_MS - 60_000) / 1000;
    utimesSync(join(healLayout(s.healDir).requests, `${handled.requestId}.json`), old, old);
    await s.heal();
    expect((await s.collect()).drafts.map((d) => [d.check, d.outcome])).toEqual([['services', 'healed']]);
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);
  });

  it('a healer tree the agent cannot read stops nothing: no results this cycle, no exception', async () => {
    s = setup();
    rmSync(healLayout(s.healDir).results, { recursive: true });
    writeFileSync(healLayout(s.healDir).results, 'not a directory');
    await expect(s.collect()).resolves.toMatchObject({ drafts: [] });
  });

  it("the healer unit's OnFailure= leaves a failed result the agent reports", async () => {
    s = setup();
    recordHealerFailure(s.healDir, { uid: process.getuid!(), gid: process.getgid!() }, s.sim.now(), 'start-limit-hit');
    const drafts = (await s.collect()).drafts;
    assertValidDrafts(drafts);
    expect(drafts).toHaveLength(1);
    expect(drafts[0]).toMatchObject({ check: 'order', outcome: 'failed' });
    expect(drafts[0]!.reason).toMatch(/^the healer unit failed \(start-limit-hit\)/);
  });
});
