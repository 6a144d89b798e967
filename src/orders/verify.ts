import { flakeSourceAllowed, parsePinnedFlakeRef } from '../config/index.js';
import { ORDER_PAYLOAD_TYPE, envelopeSigners, type PublicKey } from '../crypto/index.js';
import { MAX_ORDER_PAYLOAD_BYTES, parseOrderPayload, peekOrderId, type Order } from './schema.js';
import type { OrderState } from './state.js';

export const REJECT_REASONS = [
  'bad_envelope',
  'bad_signature',
  'unknown_key',
  'wrong_payload_type',
  'payload_too_large',
  'bad_payload',
  'unknown_type',
  'bad_params',
  'insufficient_signatures',
  'flake_not_allowed',
  'closure_not_allowed',
  'wrong_site',
  'wrong_host',
  'ttl_too_long',
  'expired',
  'issued_in_future',
  'replayed',
  'stale_sequence',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** config.maxDeferral's default: a week covers a window that opens once a day, with slack. */
const DEFAULT_MAX_DEFERRAL_S = 7 * 86_400;

export interface VerifyContext {
  readonly trustedKeys: readonly PublicKey[];
  readonly siteId: string;
  readonly hostId: string;
  /** config.orderTtl: the longest an order may live, issued_at to expires_at. */
  readonly orderTtlS: number;
  /** How far in the future issued_at may be before the order counts as forged or the clock as wrong. */
  readonly ntpMaxSkewMs: number;
  /** config.maxDeferral: the latest execute_by an order may carry, in seconds after issued_at (default 7 days). */
  readonly maxDeferralS?: number;
  readonly now: number;
  /** Distinct trusted signers each order type needs (config.orderSignaturesRequired); absent: 1 for every type. */
  readonly signaturesRequired?: Readonly<Record<string, number>>;
  /** Flake URL prefixes an apply_baseline order may name (config.allowedFlakes, or the baseline's repository); absent: none. */
  readonly allowedFlakes?: readonly string[];
  /** Whether binary caches and their keys are configured for apply_closure; absent: no. */
  readonly closuresAllowed?: boolean;
}

export type Rejection = {
  decision: 'rejected';
  reason: RejectReason;
  message: string;
  /** From the payload when it had a well-formed one, even unauthenticated; evidence only. */
  orderId: string | null;
};
/** keyid: the first valid signer; signers: every distinct trusted key that signed. */
export type Accepted = { decision: 'accepted'; order: Order; keyid: string; signers: readonly string[] };
export type OrderDecision = Accepted | Rejection;

/** Signed (by enough distinct keys), parsed, in vocabulary, bound to this host, fresh and within policy; replay and sequence not yet checked. */
export type OrderCheck = Accepted | (Rejection & { authenticated: Order | null });

// Base64 of MAX_ORDER_PAYLOAD_BYTES, plus room for payloadType and up to 8 signatures.
const MAX_PAYLOAD_B64 = Math.ceil(MAX_ORDER_PAYLOAD_BYTES / 3) * 4;
const MAX_ENVELOPE_TEXT = MAX_PAYLOAD_B64 + 4096;

function reject(reason: RejectReason, message: string, orderId: string | null = null, authenticated: Order | null = null): Rejection & { authenticated: Order | null } {
  return { decision: 'rejected', reason, message, orderId, authenticated };
}

/** Accept raw JSON text or bytes too, so the size limit applies before anything is parsed. */
function toEnvelopeObject(input: unknown): { ok: true; value: unknown } | { ok: false; rejection: OrderCheck } {
  if (typeof input === 'string' || input instanceof Uint8Array) {
    const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
    if (size > MAX_ENVELOPE_TEXT) return { ok: false, rejection: reject('payload_too_large', `envelope is ${size} bytes, over the ${MAX_ENVELOPE_TEXT}-byte limit`) };
    try {
      return { ok: true, value: JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8')) };
    } catch {
      return { ok: false, rejection: reject('bad_envelope', 'envelope is not JSON') };
    }
  }
  return { ok: true, value: input };
}

/**
 * Every order check of docs/orders.md that needs no state: size, envelope, key, signature, payload schema,
 * vocabulary, params, site/host binding, TTL, expiry and future dating. The healer runs exactly
 * this on every request it receives, so it trusts nothing the agent decided.
 */
export function checkOrder(input: unknown, ctx: VerifyContext): OrderCheck {
  const env = toEnvelopeObject(input);
  if (!env.ok) return env.rejection;
  const raw = env.value;
  if (typeof raw === 'object' && raw !== null) {
    const payload = (raw as Record<string, unknown>).payload;
    if (typeof payload === 'string' && payload.length > MAX_PAYLOAD_B64) {
      return reject('payload_too_large', `payload is over ${MAX_ORDER_PAYLOAD_BYTES} bytes`);
    }
  }
  const sig = envelopeSigners(raw, ORDER_PAYLOAD_TYPE, ctx.trustedKeys);
  if (!sig.ok) return reject(sig.reason, sig.message);
  if (sig.signers.length === 0) {
    let orderId: string | null = null;
    try {
      orderId = peekOrderId(JSON.parse(sig.payload.toString('utf8')));
    } catch {
      orderId = null;
    }
    if (sig.invalid > 0) return reject('bad_signature', 'signature does not verify', orderId);
    const names = (raw as { signatures: { keyid: string }[] }).signatures.map((s) => JSON.stringify(s.keyid)).join(', ');
    return reject('unknown_key', `no trusted key named ${names}`, orderId);
  }
  if (sig.payload.length > MAX_ORDER_PAYLOAD_BYTES) {
    return reject('payload_too_large', `payload is ${sig.payload.length} bytes, over the ${MAX_ORDER_PAYLOAD_BYTES}-byte limit`);
  }
  let json: unknown;
  try {
    json = JSON.parse(sig.payload.toString('utf8'));
  } catch {
    return reject('bad_payload', 'payload is not JSON');
  }
  const parsed = parseOrderPayload(json);
  if (!parsed.ok) return reject(parsed.reason, parsed.message, peekOrderId(json));
  const order = parsed.order;
  const id = order.order_id;
  const required = ctx.signaturesRequired?.[order.type] ?? 1;
  if (sig.signers.length < required) {
    // Not authenticated enough to be recorded: a relay stripping a co-signature must not burn the order's id.
    const others = [sig.invalid ? `${sig.invalid} did not verify` : '', sig.unknown ? `${sig.unknown} by unknown keys` : ''].filter(Boolean).join(', ');
    return reject(
      'insufficient_signatures',
      `${order.type} needs ${required} distinct trusted signers, has ${sig.signers.length} (${sig.signers.join(', ')})${others ? `; other signatures: ${others}` : ''}`,
      id,
    );
  }
  if (order.site_id !== ctx.siteId) return reject('wrong_site', `order is for site "${order.site_id}", this is "${ctx.siteId}"`, id, order);
  if (order.host_id !== '*' && order.host_id !== ctx.hostId) {
    return reject('wrong_host', `order is for host "${order.host_id}", this is "${ctx.hostId}"`, id, order);
  }
  const issued = Date.parse(order.issued_at);
  const expires = Date.parse(order.expires_at);
  if (expires - issued > ctx.orderTtlS * 1000) {
    return reject('ttl_too_long', `order lives ${Math.round((expires - issued) / 1000)} s, over orderTtl ${ctx.orderTtlS} s`, id, order);
  }
  const maxDeferralS = ctx.maxDeferralS ?? DEFAULT_MAX_DEFERRAL_S;
  if (order.execute_by !== undefined && Date.parse(order.execute_by) - issued > maxDeferralS * 1000) {
    return reject('ttl_too_long', `execute_by is ${Math.round((Date.parse(order.execute_by) - issued) / 1000)} s after issued_at, over maxDeferral ${maxDeferralS} s`, id, order);
  }
  if (issued > ctx.now + ctx.ntpMaxSkewMs) {
    return reject('issued_in_future', `issued_at is ${issued - ctx.now} ms ahead of this clock (allowed ${ctx.ntpMaxSkewMs} ms)`, id, order);
  }
  if (ctx.now >= expires) return reject('expired', `order expired at ${order.expires_at}`, id, order);
  if (order.type === 'apply_baseline') {
    const ref = parsePinnedFlakeRef(order.params.flakeRef);
    // The schema already refused an unpinned reference; the source carries no user info.
    const source = ref.ok ? ref.value.source : '?';
    const prefixes = ctx.allowedFlakes ?? [];
    if (!ref.ok || !flakeSourceAllowed(source, prefixes)) {
      const allowed = prefixes.length ? prefixes.join(', ') : 'nothing';
      return reject('flake_not_allowed', `params.flakeRef: ${source} is not under allowedFlakes (${allowed})`, id, order);
    }
  }
  if (order.type === 'apply_closure' && !ctx.closuresAllowed) {
    return reject('closure_not_allowed', 'no closureSubstituters and closureTrustedPublicKeys are configured to substitute a closure from', id, order);
  }
  return { decision: 'accepted', order, keyid: sig.signers[0]!, signers: sig.signers };
}

/**
 * Full verification: checkOrder, then replay and sequence against the state, and
 * the decision recorded in the same transaction. Rejections of authenticated orders are recorded
 * too, so an order once refused is never accepted later; unauthenticated junk is not, so a
 * hostile relay can neither grow the table nor burn a real order's id.
 */
export function verifyOrder(input: unknown, ctx: VerifyContext, state: OrderState): OrderDecision {
  const checked = checkOrder(input, ctx);
  return state.atomically((): OrderDecision => {
    if (checked.decision === 'rejected') {
      const { authenticated, ...rejection } = checked;
      if (authenticated && !state.seen(authenticated.order_id)) {
        state.recordRejected({ orderId: authenticated.order_id, siteId: authenticated.site_id, sequence: authenticated.sequence, reason: checked.reason }, ctx.now);
      }
      return rejection;
    }
    const order = checked.order;
    if (state.seen(order.order_id)) {
      return { decision: 'rejected', reason: 'replayed', message: `order_id ${order.order_id} was already seen`, orderId: order.order_id };
    }
    const last = state.lastSequence(order.site_id);
    if (last !== null && order.sequence <= last) {
      state.recordRejected({ orderId: order.order_id, siteId: order.site_id, sequence: order.sequence, reason: 'stale_sequence' }, ctx.now);
      return { decision: 'rejected', reason: 'stale_sequence', message: `sequence ${order.sequence} is not above the last accepted ${last}`, orderId: order.order_id };
    }
    state.recordAccepted(order, ctx.now);
    return checked;
  });
}
