import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { addSignature, type Envelope } from '../../src/crypto/index.js';
import { SAMPLE_FLAKE_SOURCE, type GenerationSpec } from '../../testing/index.js';
import { healLayout } from '../../src/state/index.js';
import { iso, makeKey, signPayload } from '../orders/fixtures.js';
import { activateSteps, msp, rollbackSteps, setup, type Setup } from './fixtures.js';

let s: Setup | undefined;
afterEach(() => {
  s?.cleanup();
  s = undefined;
});

const msp2 = makeKey('msp-2027');
const trustedCache = makeKey('cache-msp-1');
const otherCache = makeKey('cache-elsewhere-1');
const CACHE = 'https://cache.msp.example';

const orderIdOf = (env: Envelope) => (JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { order_id: string }).order_id;

/** Drop a request file exactly as a compromised agent could: no schema check on the way in. */
function dropRaw(t: Setup, env: Envelope, actions: unknown[]): void {
  const id = randomUUID();
  const req = { version: 1, request_id: id, created_at: iso(t.sim.now()), envelope: env, plan: { order_id: orderIdOf(env), actions } };
  writeFileSync(join(healLayout(t.healDir).requests, `${id}.json`), JSON.stringify(req));
}

function specOf(t: Setup, revision: string): GenerationSpec {
  const { release, nixpkgsRevision, units, ruleset } = t.sim.currentGeneration();
  return { configurationRevision: revision, release, nixpkgsRevision, units, ruleset };
}

const rev = (c: string) => c.repeat(40);
const siteRef = (revision: string) => `${SAMPLE_FLAKE_SOURCE}?rev=${revision}#appliance`;

/** Every flake reference a signed order must not make root build, and the reason the agent gives. */
const REFUSED: Array<[string, string, string]> = [
  ['unpinned (a branch)', `${SAMPLE_FLAKE_SOURCE}?ref=main#appliance`, 'bad_params'],
  ['local path:', `path:/var/lib/compliance-agent/evil?rev=${rev('e')}#appliance`, 'bad_params'],
  ['git+file', `git+file:///var/lib/compliance-agent/evil?rev=${rev('e')}#appliance`, 'bad_params'],
  ['tarball', `tarball+https://evil.example/x.tar.gz?rev=${rev('e')}#appliance`, 'bad_params'],
  ['user info', `git+https://oauth2:glpat-PLANTED@git.msp.example/sites/clinic-001?rev=${rev('e')}#appliance`, 'bad_params'],
  ['off the allowlist', `github:attacker/evil?rev=${rev('e')}#appliance`, 'flake_not_allowed'],
];

describe('pinned sources: refused by the agent and, dropped directly, by the healer', () => {
  it.each(REFUSED)('%s', async (_what, flakeRef, reason) => {
    s = setup();
    const env = s.order('apply_baseline', { revision: rev('e'), flakeRef });
    const handled = await s.handleOrder(env, await s.cycle());
    expect(handled.accepted).toBe(false);
    expect(handled.drafts[0]!.reason).toMatch(new RegExp(`^${reason}: `));
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);

    dropRaw(s, s.order('apply_baseline', { revision: rev('e'), flakeRef }), [{ kind: 'rebuild_switch', flakeRef }]);
    s.sim.clearExecuted();
    const run = await s.heal();
    const result = run.results[0]!.result;
    expect(result.outcome).toBe('rejected');
    expect(result.reason).toMatch(/^(bad_request: plan\.actions\.0\.flakeRef|bad_params|flake_not_allowed)/);
    expect(s.sim.commandLines().filter((c) => c.startsWith('nix '))).toEqual([]);
    expect(s.sim.actions()).toEqual([]);
    // A token in a refused reference never reaches the evidence.
    expect(JSON.stringify([handled.drafts, result])).not.toContain('glpat-PLANTED');
  });

  it('an allowed, pinned reference is built with accept-flake-config false, checked and activated', async () => {
    s = setup();
    const target = rev('c');
    s.sim.defineFlake(siteRef(target), specOf(s, target));
    await s.handleOrder(s.order('apply_baseline', { revision: target, flakeRef: siteRef(target) }), await s.cycle());
    s.sim.clearExecuted();
    const result = (await s.heal()).results[0]!.result;
    expect(result.outcome).toBe('healed');
    const built = s.sim.currentGeneration().storePath;
    expect(s.sim.commandLines()).toContain(
      `nix --extra-experimental-features nix-command flakes build --no-link --print-out-paths --option accept-flake-config false ${SAMPLE_FLAKE_SOURCE}?rev=${target}#nixosConfigurations.appliance.config.system.build.toplevel`,
    );
    expect(s.sim.actions()).toEqual(activateSteps(built));
    expect(s.sim.runningSystem().storePath).toBe(built);
    expect(result.post_state).toMatchObject({ system: built });
  });
});

describe('closure orders: substituted only from listed caches signed by listed keys', () => {
  const closureConfig = { allowedHosts: ['mcp.local', 'cache.msp.example'], closureSubstituters: [CACHE], closureTrustedPublicKeys: [trustedCache.text] };

  it('from the trusted cache key: substituted with signatures required, checked, activated', async () => {
    s = setup({ config: closureConfig });
    const closure = s.sim.closureFor(specOf(s, rev('f')));
    s.sim.publishClosure(CACHE, closure, trustedCache.text);
    expect(s.sim.inStore(closure.storePath)).toBe(false);
    await s.handleOrder(s.order('apply_closure', { storePath: closure.storePath, revision: rev('f') }), await s.cycle());
    s.sim.clearExecuted();
    const result = (await s.heal()).results[0]!.result;
    expect(result.outcome).toBe('healed');
    expect(s.sim.commandLines()[s.sim.commandLines().findIndex((c) => c.startsWith('nix-store'))]).toBe(
      `nix-store --realise ${closure.storePath} --option substituters ${CACHE} --option trusted-public-keys ${trustedCache.text} --option require-sigs true`,
    );
    expect(s.sim.commandLines().some((c) => c.startsWith('nix ') || c.startsWith('nixos-rebuild switch'))).toBe(false);
    expect(s.sim.actions()).toEqual(activateSteps(closure.storePath));
    expect(s.sim.runningSystem().storePath).toBe(closure.storePath);
  });

  it('signed by another key: refused, nothing substituted, nothing activated', async () => {
    s = setup({ config: closureConfig });
    const closure = s.sim.closureFor(specOf(s, rev('f')));
    s.sim.publishClosure(CACHE, closure, otherCache.text);
    const before = s.sim.currentGeneration();
    await s.handleOrder(s.order('apply_closure', { storePath: closure.storePath, revision: rev('f') }), await s.cycle());
    s.sim.clearExecuted();
    const result = (await s.heal()).results[0]!.result;
    expect(result.outcome).toBe('rejected');
    expect(result.reason).toBe(`untrusted_closure: no configured cache has ${closure.storePath} signed by a key in closureTrustedPublicKeys; nothing was activated`);
    expect(s.sim.inStore(closure.storePath)).toBe(false);
    expect(s.sim.activations()).toEqual([]);
    expect(s.sim.currentGeneration()).toEqual(before);
  });

  it('a trusted closure that reports another revision than the signed one: refused before activation', async () => {
    s = setup({ config: closureConfig });
    const closure = s.sim.closureFor(specOf(s, rev('a')));
    s.sim.publishClosure(CACHE, closure, trustedCache.text);
    await s.handleOrder(s.order('apply_closure', { storePath: closure.storePath, revision: rev('f') }), await s.cycle());
    s.sim.clearExecuted();
    const result = (await s.heal()).results[0]!.result;
    expect(result.outcome).toBe('rejected');
    expect(result.reason).toMatch(/^revision_mismatch: .* reports configurationRevision a{40}, the order signed f{40}; nothing was activated$/);
    expect(s.sim.activations()).toEqual([]);
  });

  it('with no cache configured, a closure order is refused by the agent and, dropped directly, by the healer; nothing runs', async () => {
    s = setup();
    const refused = await s.handleOrder(s.order('apply_closure', { storePath: s.sim.closureFor(specOf(s, rev('f'))).storePath, revision: rev('f') }), await s.cycle());
    expect(refused.drafts[0]!.reason).toMatch(/^closure_not_allowed: /);
    const closure = s.sim.closureFor(specOf(s, rev('f')));
    dropRaw(s, s.order('apply_closure', { storePath: closure.storePath, revision: rev('f') }), [{ kind: 'switch_closure', storePath: closure.storePath, revision: rev('f') }]);
    s.sim.clearExecuted();
    const result = (await s.heal()).results[0]!.result;
    expect(result.reason).toMatch(/^closure_not_allowed: /);
    expect(s.sim.commandLines().filter((c) => /^nix(-store|-env)? /.test(c))).toEqual([]);
  });
});

describe('threshold signatures, counted by the agent and again by the healer', () => {
  const twoOfN = { trustedOrderKeys: [msp.text, msp2.text], orderSignaturesRequired: { rollback: 2, apply_baseline: 2, apply_closure: 2 } };

  it('1 signer of a rollback that needs 2: refused by the agent, not burned, accepted once co-signed', async () => {
    s = setup({ config: twoOfN });
    const one = s.order('rollback', {});
    const handled = await s.handleOrder(one, await s.cycle());
    expect(handled.accepted).toBe(false);
    expect(handled.drafts[0]!.reason).toBe('insufficient_signatures: rollback needs 2 distinct trusted signers, has 1 (msp-2026)');
    const two = addSignature(one, msp2.secret);
    expect((await s.handleOrder(two, await s.cycle())).accepted).toBe(true);
    expect((await s.heal()).results[0]!.result.outcome).toBe('healed');
  });

  it("dropped directly in the healer's drop box: 0, 1, duplicate and forged co-signatures refused; 2 distinct applied", async () => {
    s = setup({ config: twoOfN });
    const forger = makeKey('msp-2027');
    const one = s.order('rollback', {});
    const zero = signPayload(JSON.parse(Buffer.from(one.payload, 'base64').toString()), makeKey('attacker').secret);
    const dup = { ...one, signatures: [one.signatures[0]!, one.signatures[0]!] };
    const forged = addSignature(s.order('rollback', {}), forger.secret);
    for (const [env, reason] of [
      [zero, /^unknown_key/],
      [s.order('rollback', {}), /^insufficient_signatures: rollback needs 2 distinct trusted signers, has 1 \(msp-2026\)$/],
      [dup, /^insufficient_signatures: .* has 1 \(msp-2026\)$/],
      [forged, /^insufficient_signatures: .* has 1 \(msp-2026\); other signatures: 1 did not verify$/],
    ] as const) {
      dropRaw(s, env, [{ kind: 'rollback' }]);
      s.sim.clearExecuted();
      const result = (await s.heal()).results[0]!.result;
      expect(result.outcome).toBe('rejected');
      expect(result.reason).toMatch(reason);
      expect(s.sim.actions()).toEqual([]);
    }
    const before = s.sim.currentGeneration().number;
    dropRaw(s, addSignature(s.order('rollback', {}), msp2.secret), [{ kind: 'rollback' }]);
    const result = (await s.heal()).results[0]!.result;
    expect(result.outcome).toBe('healed');
    expect(s.sim.currentGeneration().number).toBe(before - 1);
  });
});

describe('rollback returns to the exact generation that ran before the switch', () => {
  it('after an earlier rollback, a second failed switch lands on the pre-switch generation, not the known-bad one', async () => {
    s = setup();
    const good = s.sim.currentGeneration();
    for (const [i, c] of [
      [1, '1'],
      [2, '2'],
    ] as const) {
      s.sim.defineFlake(siteRef(rev(c)), specOf(s, rev(c)));
      s.sim.scriptRebuild({ mode: 'unhealthy', failUnit: 'postgresql.service' });
      await s.handleOrder(s.order('apply_baseline', { revision: rev(c), flakeRef: siteRef(rev(c)) }), await s.cycle());
      s.sim.clearExecuted();
      const result = (await s.heal()).results[0]!.result;
      expect(result.outcome, `switch ${i}`).toBe('rolled_back');
      expect(s.sim.actions().slice(-2), `switch ${i}`).toEqual(rollbackSteps(good.number));
      expect(s.sim.currentGeneration().number).toBe(good.number);
      expect(s.sim.runningSystem().storePath).toBe(good.storePath);
    }
    // Generations 3 and 4 are the two bad builds; N-1 of 4 would have been bad generation 3.
    expect(s.sim.listGenerations().map((g) => g.number)).toEqual([1, 2, 3, 4]);
  });
});
