import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { EVIDENCE_PAYLOAD_TYPE, type Envelope } from '../../src/crypto/index.js';
import { REJECT_REASONS, type RejectReason } from '../../src/orders/index.js';
import { healLayout } from '../../src/state/index.js';
import { iso, makeKey, signPayload } from '../orders/fixtures.js';
import { assertValidDrafts, msp, setup, type Setup } from './fixtures.js';

let s: Setup | undefined;
afterEach(() => {
  s?.cleanup();
  s = undefined;
});

const payloadOf = (env: Envelope) => JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Record<string, unknown>;
const resign = (env: Envelope, change: Record<string, unknown>) => signPayload({ ...payloadOf(env), ...change }, msp.secret);

/**
 * End to end: each bad order, even one that would heal real drift, is
 * rejected with evidence naming the reason, nothing is spooled, and the healer then runs no command.
 */
const CASES: Array<[RejectReason, string, (t: Setup) => unknown]> = [
  ['bad_envelope', 'not an envelope', () => ({ order: 'restart everything' })],
  [
    'bad_signature',
    'payload altered after signing',
    (t) => ({
      ...t.order('heal', { checks: ['services'] }),
      payload: Buffer.from(JSON.stringify({ ...payloadOf(t.order('heal', { checks: ['services'] })), type: 'rollback', params: {} })).toString('base64'),
    }),
  ],
  ['unknown_key', 'signed by a key not in trustedOrderKeys', (t) => signPayload(payloadOf(t.order('heal', { checks: ['services'] })), makeKey('mcp-forger').secret)],
  ['wrong_payload_type', 'an evidence envelope replayed as an order', (t) => signPayload(payloadOf(t.order('heal', { checks: ['services'] })), msp.secret, EVIDENCE_PAYLOAD_TYPE)],
  ['payload_too_large', 'over 64 KiB', (t) => resign(t.order('heal', { checks: ['services'] }), { policy_version: 'p'.repeat(70_000) })],
  ['bad_payload', 'payload not JSON', () => signPayload('#!/bin/sh\nreboot', msp.secret)],
  ['unknown_type', 'a type outside the vocabulary', (t) => t.order('shell', { command: 'systemctl restart sshd' })],
  ['bad_params', 'heal of an unknown check', (t) => t.order('heal', { checks: ['sshd'] })],
  [
    'closure_not_allowed',
    'a closure order with no binary cache configured',
    (t) => t.order('apply_closure', { storePath: '/nix/store/0c8ivz6gxbj8zf3wcd4i5hw7lrn8f8bv-nixos-system-a', revision: 'e'.repeat(40) }),
  ],
  [
    'flake_not_allowed',
    'a pinned flake outside allowedFlakes',
    (t) => t.order('apply_baseline', { revision: 'e'.repeat(40), flakeRef: `github:attacker/evil?rev=${'e'.repeat(40)}#appliance` }),
  ],
  ['wrong_site', 'another site', (t) => t.order('heal', { checks: ['services'] }, { site_id: 'clinic-999' })],
  ['wrong_host', 'another host', (t) => t.order('heal', { checks: ['services'] }, { host_id: 'other-appliance' })],
  ['ttl_too_long', 'lives longer than orderTtl', (t) => t.order('heal', { checks: ['services'] }, { expires_at: iso(t.sim.now() + 86_400_000) })],
  ['expired', 'expired', (t) => t.order('heal', { checks: ['services'] }, { issued_at: iso(t.sim.now() - 700_000), expires_at: iso(t.sim.now() - 1000) })],
  [
    'issued_in_future',
    'issued beyond ntpMaxSkewMs ahead',
    (t) => t.order('heal', { checks: ['services'] }, { issued_at: iso(t.sim.now() + 60_000), expires_at: iso(t.sim.now() + 600_000) }),
  ],
];

describe('every rejected order becomes evidence and causes no action', () => {
  it.each(CASES)('%s (%s)', async (reason, _what, make) => {
    s = setup();
    s.sim.stopService('sshd.service');
    const envelope = make(s);
    s.sim.clearExecuted();
    const handled = await s.handleOrder(envelope, await s.cycle());
    expect(handled.accepted).toBe(false);
    expect(handled.requestId).toBeNull();
    expect(handled.drafts).toHaveLength(1);
    assertValidDrafts(handled.drafts);
    expect(handled.drafts[0]).toMatchObject({ check: 'order', outcome: 'rejected', action_taken: [], post_state: null });
    expect(handled.drafts[0]!.reason).toMatch(new RegExp(`^${reason}: `));
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);
    expect((await s.heal()).results).toEqual([]);
    expect(s.sim.actions()).toEqual([]);
    expect(s.sim.unitState('sshd.service')?.active).toBe('inactive');
  });

  it('replayed: the same heal order relayed twice heals once; the replay is rejected evidence and runs nothing', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    const env = s.order('heal', { checks: ['services'] });
    expect((await s.handleOrder(env, await s.cycle())).accepted).toBe(true);
    await s.heal();
    s.sim.stopService('sshd.service');
    s.sim.clearExecuted();
    const again = await s.handleOrder(env, await s.cycle());
    expect(again.accepted).toBe(false);
    expect(again.drafts[0]!.reason).toMatch(/^replayed: /);
    expect(again.drafts[0]!.order_id).toBe(payloadOf(env).order_id);
    expect((await s.heal()).results).toEqual([]);
    expect(s.sim.actions()).toEqual([]);
  });

  it('stale_sequence: an older order signed before the last accepted one is rejected and runs nothing', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    const older = s.order('heal', { checks: ['services'] });
    const newer = s.order('run_checks', {});
    expect((await s.handleOrder(newer, await s.cycle())).accepted).toBe(true);
    s.sim.clearExecuted();
    const h = await s.handleOrder(older, await s.cycle());
    expect(h.drafts[0]!.reason).toMatch(/^stale_sequence: /);
    expect((await s.heal()).results).toEqual([]);
    expect(s.sim.actions()).toEqual([]);
  });

  it('the table, the two above and the threshold tests (order-power.test.ts) cover every rejection reason', () => {
    const covered = new Set<string>([...CASES.map((c) => c[0]), 'replayed', 'stale_sequence', 'insufficient_signatures']);
    expect(REJECT_REASONS.filter((r) => !covered.has(r))).toEqual([]);
  });

  it('rejection evidence is rate-limited; the next emitted one reports how many were suppressed', async () => {
    s = setup({ rejectionLimit: { perHour: 1, burst: 3 } });
    const ctx = await s.cycle();
    const forger = makeKey('forger');
    const counts: number[] = [];
    for (let i = 0; i < 10; i++) counts.push((await s.handleOrder(signPayload(payloadOf(s.order('rollback', {})), forger.secret), ctx)).drafts.length);
    expect(counts).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    const later = { ...ctx, now: ctx.now + 3_600_000 };
    const next = await s.handleOrder(signPayload(payloadOf(s.order('rollback', {})), forger.secret), later);
    expect(next.drafts[0]!.reason).toMatch(/\(7 earlier rejection\(s\) not reported: rate limit\)$/);
  });
});

describe('accepted orders that need no healer', () => {
  it('run_checks: one bundle per requested check with its result and the order id', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    const env = s.order('run_checks', { checks: ['services', 'time'] });
    const h = await s.handleOrder(env, await s.cycle());
    assertValidDrafts(h.drafts);
    expect(h.drafts.map((d) => [d.check, d.outcome, d.order_id])).toEqual([
      ['services', 'drift_detected', payloadOf(env).order_id],
      ['time', 'compliant', payloadOf(env).order_id],
    ]);
    expect(s.sim.actions()).toEqual([]);
  });

  it('heal of a compliant check: compliant, nothing spooled; heal of encryption drift: failed, report only', async () => {
    s = setup();
    const ok = await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    expect(ok.drafts[0]).toMatchObject({ outcome: 'compliant', reason: 'nothing to heal: services compliant' });
    s.sim.unencryptMount('/var/backup');
    const enc = await s.handleOrder(s.order('heal', { checks: ['encryption'] }), await s.cycle());
    expect(enc.drafts[0]).toMatchObject({ outcome: 'failed', check: 'encryption' });
    expect(enc.drafts[0]!.reason).toMatch(/^cannot heal: encryption: .*never done automatically/);
    expect(readdirSync(healLayout(s.healDir).requests)).toEqual([]);
  });

  it('a unit that is down but not in the baseline is never restarted', async () => {
    s = setup();
    s.sim.stopService('compliance-agent.service');
    const h = await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    expect(h.drafts[0]).toMatchObject({ outcome: 'compliant' });
    expect(h.requestId).toBeNull();
  });

  it('an accepted heal that cannot be spooled is evidence of failure, not silence', async () => {
    s = setup();
    s.sim.stopService('sshd.service');
    const dir = healLayout(s.healDir).requests;
    rmSync(dir, { recursive: true });
    writeFileSync(dir, 'not a directory');
    const h = await s.handleOrder(s.order('heal', { checks: ['services'] }), await s.cycle());
    expect(h.accepted).toBe(true);
    expect(h.requestId).toBeNull();
    expect(h.drafts[0]).toMatchObject({ outcome: 'failed', check: 'services', action_taken: [] });
    expect(h.drafts[0]!.reason).toMatch(/^accepted but not carried out: could not write the heal request/);
  });
});
