import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { CHECK_NAMES } from '../../src/checks/index.js';
import { ORDER_PAYLOAD_TYPE, type Envelope } from '../../src/crypto/index.js';
import { ORDER_TYPES, REJECT_REASONS, sqliteOrderState, verifyOrder, type VerifyContext } from '../../src/orders/index.js';
import { openStateDb } from '../../src/state/index.js';
import { makeKey } from '../orders/fixtures.js';
import { fixedKeySeed, seeded } from '../helpers/fuzz.js';
import { FUZZ_RUNS, isOneBoundedLine, nodeSigner } from './sign.js';

// Order envelopes and payloads, random and mutated from valid ones, through the agent's full
// verification (signature, schema, vocabulary, binding, times, replay and sequence state).
// Properties: nothing throws; nothing accepted that an independent reading of docs/orders.md refuses;
// every rejection carries a known reason and a bounded one-line message.

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const SITE = 'clinic-001';
const HOST = 'appliance-1';
const msp = makeKey('msp-2026', fixedKeySeed('msp-2026'));
const rotated = makeKey('msp-2027', fixedKeySeed('msp-2027'));
const stranger = makeKey('msp-2026', fixedKeySeed('stranger'));
const signers = { msp: nodeSigner(msp.secret), rotated: nodeSigner(rotated.secret), stranger: nodeSigner(stranger.secret) };
const ctx: VerifyContext = {
  trustedKeys: [msp.pub, rotated.pub],
  siteId: SITE,
  hostId: HOST,
  orderTtlS: 900,
  ntpMaxSkewMs: 5000,
  now: NOW,
  allowedFlakes: ['github:msp/clinic-001'],
  closuresAllowed: true,
};
const CLOSURE = '/nix/store/0c8ivz6gxbj8zf3wcd4i5hw7lrn8f8bv-nixos-system-appliance-1-25.05.20261123.5880666';
const PINNED_REV = '5880666aa0e1b2c3d4e5f60718293a4b5c6d7e8f';
const db = openStateDb(':memory:');
const state = sqliteOrderState(db);
afterAll(() => db.close());

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const FIELDS = ['order_id', 'site_id', 'host_id', 'sequence', 'issued_at', 'expires_at', 'policy_version', 'type', 'params'] as const;

const checkList = fc.subarray([...CHECK_NAMES], { minLength: 1 });
const typed = fc.oneof(
  fc.record({
    type: fc.constant('run_checks'),
    params: fc.oneof(
      fc.constant({}),
      checkList.map((checks) => ({ checks })),
    ),
  }),
  fc.record({ type: fc.constant('heal'), params: checkList.map((checks) => ({ checks })) }),
  fc.record({ type: fc.constant('apply_baseline'), params: fc.constant({ revision: PINNED_REV, flakeRef: `github:msp/clinic-001?rev=${PINNED_REV}#appliance` }) }),
  // Pinned but from a repository outside allowedFlakes: always flake_not_allowed.
  fc.record({ type: fc.constant('apply_baseline'), params: fc.constant({ revision: PINNED_REV, flakeRef: `github:msp/clinic-001-evil?rev=${PINNED_REV}#appliance` }) }),
  fc.record({ type: fc.constant('apply_closure'), params: fc.constant({ storePath: CLOSURE, revision: PINNED_REV }) }),
  fc.record({ type: fc.constant('rollback'), params: fc.constant({}) }),
);
/** What the agent accepted so far: the oracle's replay and sequence memory. */
const model = { seen: new Set<string>(), lastSequence: -1 };
const validOrder = fc
  .record({
    orderId: fc.uuid({ version: 4 }),
    typed,
    issuedOffset: fc.integer({ min: -700_000, max: 7_000 }),
    ttl: fc.integer({ min: 1_000, max: 950_000 }),
    host: fc.constantFrom(HOST, '*'),
    seqJump: fc.integer({ min: -1, max: 8 }),
  })
  .map((r) => {
    // A mutation may get a near-MAX_SAFE_INTEGER sequence accepted, after which every order is
    // (rightly) stale; a fresh agent then, so the rest of the run still reaches acceptance.
    if (model.lastSequence > 2 ** 40) {
      db.exec('DELETE FROM orders_seen; DELETE FROM order_sequence;');
      model.seen.clear();
      model.lastSequence = -1;
    }
    return r;
  })
  .map((r) => ({
    // Fresh ids and mostly rising sequences, so valid orders are accepted and the properties bite.
    order_id: r.orderId,
    site_id: SITE,
    host_id: r.host,
    sequence: Math.max(0, model.lastSequence + r.seqJump),
    issued_at: iso(NOW + r.issuedOffset),
    expires_at: iso(NOW + r.issuedOffset + r.ttl),
    policy_version: '1.0',
    ...r.typed,
  }));

const weird = fc.oneof(
  fc.anything(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constant('x'.repeat(70_000)),
  fc.constant('\u0000\n\u202e\u001b[31m'),
  fc.integer(),
  fc.double(),
  fc.constant(null),
  fc.uuid(),
  fc.constantFrom(SITE, HOST, '*', 'run_checks', 'heal', iso(NOW), iso(NOW + 60_000)),
);

type PayloadMutation =
  | { kind: 'none' }
  | { kind: 'delete'; key: string }
  | { kind: 'set'; key: string; value: unknown }
  | { kind: 'add'; key: string; value: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'truncate'; at: number };
const payloadMutation: fc.Arbitrary<PayloadMutation> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom(...FIELDS) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom(...FIELDS), value: weird }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.constant('params'), value: fc.jsonValue() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('add' as const), key: fc.string({ unit: 'grapheme', maxLength: 30 }), value: weird }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('text' as const), text: fc.string({ unit: 'binary', maxLength: 200 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
);

function payloadBytes(order: Record<string, unknown>, m: PayloadMutation): Buffer {
  if (m.kind === 'text') return Buffer.from(m.text, 'utf8');
  const o: Record<string, unknown> = { ...order };
  if (m.kind === 'delete') delete o[m.key];
  if (m.kind === 'set' || m.kind === 'add') o[m.key] = m.value;
  const text = JSON.stringify(o) ?? 'null';
  return Buffer.from(m.kind === 'truncate' ? text.slice(0, m.at % (text.length + 1)) : text, 'utf8');
}

type EnvelopeMutation =
  | { kind: 'none' | 'as_text' | 'as_bytes' | 'unknown_signer' | 'second_signature' }
  | { kind: 'flip_payload' | 'flip_sig'; bit: number }
  | { kind: 'keyid' | 'payload_type'; value: string }
  | { kind: 'drop'; key: string }
  | { kind: 'set'; key: string; value: unknown }
  | { kind: 'random'; value: unknown };
const envelopeMutation: fc.Arbitrary<EnvelopeMutation> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom({ kind: 'none' as const }, { kind: 'as_text' as const }, { kind: 'as_bytes' as const }) },
  { weight: 1, arbitrary: fc.constantFrom({ kind: 'unknown_signer' as const }, { kind: 'second_signature' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('flip_payload' as const, 'flip_sig' as const), bit: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('keyid' as const, 'payload_type' as const), value: fc.string({ unit: 'grapheme', maxLength: 60 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), key: fc.constantFrom('payloadType', 'payload', 'signatures') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom('payloadType', 'payload', 'signatures', 'extra'), value: weird }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), value: fc.anything() }) },
);

function flip(b64: string, bit: number): string {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.length === 0) return b64;
  const i = bit % (bytes.length * 8);
  bytes[i >> 3]! ^= 1 << (i & 7);
  return bytes.toString('base64');
}

function envelopeInput(payload: Buffer, signer: keyof typeof signers, m: EnvelopeMutation): { input: unknown; signedIntact: boolean } {
  const env: Envelope = signers[signer](payload);
  const intact = { input: env as unknown, signedIntact: true };
  switch (m.kind) {
    case 'none':
      return intact;
    case 'as_text':
      return { input: JSON.stringify(env), signedIntact: true };
    case 'as_bytes':
      return { input: new Uint8Array(Buffer.from(JSON.stringify(env))), signedIntact: true };
    case 'second_signature':
      return { input: { ...env, signatures: [...signers.stranger(payload).signatures, ...env.signatures] }, signedIntact: true };
    case 'unknown_signer':
      return { input: signers.stranger(payload), signedIntact: false };
    case 'flip_payload':
      return { input: { ...env, payload: flip(env.payload, m.bit) }, signedIntact: false };
    case 'flip_sig':
      return { input: { ...env, signatures: [{ ...env.signatures[0]!, sig: flip(env.signatures[0]!.sig, m.bit) }] }, signedIntact: false };
    case 'keyid':
      return { input: { ...env, signatures: [{ ...env.signatures[0]!, keyid: m.value }] }, signedIntact: m.value === env.signatures[0]!.keyid };
    case 'payload_type':
      return { input: { ...env, payloadType: m.value }, signedIntact: m.value === ORDER_PAYLOAD_TYPE };
    case 'drop': {
      const copy: Record<string, unknown> = { ...env };
      delete copy[m.key];
      return { input: copy, signedIntact: false };
    }
    case 'set':
      return { input: { ...env, [m.key]: m.value }, signedIntact: false };
    case 'random':
      return { input: m.value, signedIntact: false };
  }
}

/** docs/orders.md read independently of src/orders: what an acceptable order payload is. */
function acceptable(bytes: Buffer, model: { seen: Set<string>; lastSequence: number }): string | null {
  if (bytes.length > 64 * 1024) return 'over 64 KiB';
  let o: unknown;
  try {
    o = JSON.parse(bytes.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not an object';
  const r = o as Record<string, unknown>;
  // A missing or null `params` reads as {} (src/orders does so on purpose); every other field is required, nothing else allowed.
  const keys = new Set(Object.keys(r));
  keys.add('params');
  if ([...keys].sort().join() !== [...FIELDS].sort().join()) return `keys ${Object.keys(r).join(',')}`;
  if (typeof r.order_id !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(r.order_id)) return 'order_id';
  if (model.seen.has(r.order_id)) return 'replayed';
  if (r.site_id !== SITE) return 'site';
  if (r.host_id !== HOST && r.host_id !== '*') return 'host';
  if (!Number.isSafeInteger(r.sequence) || (r.sequence as number) < 0 || (r.sequence as number) <= model.lastSequence) return 'sequence';
  if (typeof r.policy_version !== 'string' || r.policy_version.length < 1 || r.policy_version.length > 64) return 'policy_version';
  const isoRe = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
  if (typeof r.issued_at !== 'string' || typeof r.expires_at !== 'string' || !isoRe.test(r.issued_at) || !isoRe.test(r.expires_at)) return 'times';
  const issued = Date.parse(r.issued_at);
  const expires = Date.parse(r.expires_at);
  if (!(expires > issued) || expires - issued > ctx.orderTtlS * 1000 || issued > NOW + ctx.ntpMaxSkewMs || NOW >= expires) return 'freshness';
  const p = (r.params ?? {}) as Record<string, unknown> | null;
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return 'params';
  const checks = (v: unknown) => Array.isArray(v) && v.length >= 1 && v.every((c) => (CHECK_NAMES as readonly unknown[]).includes(c)) && new Set(v).size === v.length;
  switch (r.type) {
    case 'run_checks':
      return Object.keys(p).every((k) => k === 'checks') && (p.checks === undefined || checks(p.checks)) ? null : 'run_checks params';
    case 'heal':
      return Object.keys(p).join() === 'checks' && checks(p.checks) ? null : 'heal params';
    case 'apply_baseline':
      // Pinned to the signed revision, in the allowed repository (the parser's own refusals are tabled in test/orders).
      return Object.keys(p).sort().join() === 'flakeRef,revision' &&
        /^[0-9a-f]{40}$/.test(String(p.revision)) &&
        p.flakeRef === `github:msp/clinic-001?rev=${String(p.revision)}#appliance`
        ? null
        : 'apply_baseline params';
    case 'apply_closure':
      return Object.keys(p).sort().join() === 'revision,storePath' && /^[0-9a-f]{40}$/.test(String(p.revision)) && p.storePath === CLOSURE ? null : 'apply_closure params';
    case 'rollback':
      return Object.keys(p).length === 0 ? null : 'rollback params';
    default:
      return `type ${String(r.type)} not in ${ORDER_TYPES.join(',')}`;
  }
}

it(`order envelopes and payloads: ${FUZZ_RUNS} random and mutated cases, nothing invalid accepted, every rejection explained`, () => {
  const tally = { accepted: 0, rejected: new Map<string, number>() };
  fc.assert(
    fc.property(validOrder, payloadMutation, fc.constantFrom('msp' as const, 'rotated' as const), envelopeMutation, (order, pm, signer, em) => {
      const bytes = payloadBytes(order, pm);
      const { input, signedIntact } = envelopeInput(bytes, signer, em);
      const decision = verifyOrder(input, ctx, state);
      if (decision.decision === 'accepted') {
        tally.accepted++;
        // Only an intact signature by a trusted key over an acceptable payload gets here.
        expect(signedIntact).toBe(true);
        expect(acceptable(bytes, model)).toBeNull();
        const signed = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
        expect({ ...signed, params: signed.params ?? {} }).toEqual(JSON.parse(JSON.stringify(decision.order)));
        model.seen.add(decision.order.order_id);
        model.lastSequence = decision.order.sequence;
        return;
      }
      tally.rejected.set(decision.reason, (tally.rejected.get(decision.reason) ?? 0) + 1);
      expect(REJECT_REASONS).toContain(decision.reason);
      expect(isOneBoundedLine(decision.message, 600), `message ${JSON.stringify(decision.message)?.slice(0, 300)}`).toBe(true);
    }),
    seeded('order envelopes and payloads', { numRuns: FUZZ_RUNS }),
  );
  // The generators reach acceptance and most of the rejection reasons, so the properties had something to hold for.
  const seen = `accepted ${tally.accepted}, rejected ${JSON.stringify([...tally.rejected])}`;
  expect(tally.accepted, seen).toBeGreaterThan(FUZZ_RUNS / 100);
  expect([...tally.rejected.keys()].length, seen).toBeGreaterThanOrEqual(REJECT_REASONS.length - 3);
});
