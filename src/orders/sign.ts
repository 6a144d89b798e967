import { randomUUID } from 'node:crypto';
import { AgentError, isoSeconds } from '../common/index.js';
import { ORDER_PAYLOAD_TYPE, openEnvelope, addSignature, signEnvelope, type Envelope, type SecretKey } from '../crypto/index.js';
import { MAX_ORDER_TTL_S } from '../config/index.js';
import { MAX_ORDER_PAYLOAD_BYTES, parseOrderPayload, type Order } from './schema.js';

export const DEFAULT_ORDER_TTL_S = 900;

/**
 * Why `ttlS` cannot be an order's lifetime, or null: at least a second, and no longer than the
 * largest orderTtl an appliance can be configured with (it would refuse the order, ttl_too_long).
 */
export function ttlProblem(ttlS: number): string | null {
  if (!Number.isInteger(ttlS)) return 'must be a whole number of seconds';
  if (ttlS < 1) return 'an order must live at least 1 second (issued_at to expires_at)';
  if (ttlS > MAX_ORDER_TTL_S) return `over ${MAX_ORDER_TTL_S} s, the largest orderTtl an appliance accepts: every appliance would refuse it (ttl_too_long)`;
  return null;
}

/**
 * MSP side: complete an order draft and validate it exactly as the agent will. Fills `order_id`
 * (uuid), `issued_at` (now), `expires_at` (issued_at + ttl) and `sequence` from `options.sequence`
 * (the site's sequence state). Without a sequence the order is refused: a clock-derived one
 * collides within a second and outgrows every explicit one. `executeWithinS` sets `execute_by`
 * that long after `issued_at`.
 */
export function prepareOrder(draft: unknown, options: { now: number; ttlS?: number; executeWithinS?: number; sequence?: number }): Order {
  if (typeof draft !== 'object' || draft === null || Array.isArray(draft)) {
    throw new AgentError('order_invalid', 'an order must be a JSON object');
  }
  const d = draft as Record<string, unknown>;
  const issuedAt = typeof d.issued_at === 'string' ? d.issued_at : isoSeconds(options.now);
  const issuedMs = Date.parse(issuedAt);
  const filled = {
    ...d,
    order_id: d.order_id ?? randomUUID(),
    issued_at: issuedAt,
    expires_at: d.expires_at ?? (Number.isNaN(issuedMs) ? undefined : isoSeconds(issuedMs + (options.ttlS ?? DEFAULT_ORDER_TTL_S) * 1000)),
    sequence: options.sequence ?? d.sequence,
    ...(options.executeWithinS !== undefined && !Number.isNaN(issuedMs) ? { execute_by: isoSeconds(issuedMs + options.executeWithinS * 1000) } : {}),
  };
  if (filled.sequence === undefined)
    throw new AgentError('order_invalid', "order has no sequence: give one from the site's sequence state (order sign --sequence-file) or explicitly");
  const parsed = parseOrderPayload(filled);
  if (!parsed.ok) throw new AgentError('order_invalid', `order is not valid (${parsed.reason})`, parsed.message.split('; '));
  return parsed.order;
}

/** Sign a validated order as a DSSE envelope with the order payload type. */
export function signOrder(order: Order, key: SecretKey): Envelope {
  const payload = Buffer.from(JSON.stringify(order), 'utf8');
  if (payload.length > MAX_ORDER_PAYLOAD_BYTES) {
    throw new AgentError('order_too_large', `order payload is ${payload.length} bytes, over ${MAX_ORDER_PAYLOAD_BYTES}`);
  }
  return signEnvelope(ORDER_PAYLOAD_TYPE, payload, key);
}

/**
 * Co-sign: add `key`'s signature to an order envelope signed elsewhere (a second offline machine).
 * The payload must be an order that validates, so the co-signer knows what they sign; a key that
 * already signed is refused, since it would count once anyway.
 */
export function cosignOrder(input: unknown, key: SecretKey): { envelope: Envelope; order: Order } {
  const opened = openEnvelope(input, ORDER_PAYLOAD_TYPE);
  if (!opened.ok) throw new AgentError('order_invalid', opened.message);
  const env = opened.envelope;
  let json: unknown;
  try {
    json = JSON.parse(opened.payload.toString('utf8'));
  } catch {
    throw new AgentError('order_invalid', 'the envelope payload is not JSON');
  }
  const order = parseOrderPayload(json);
  if (!order.ok) throw new AgentError('order_invalid', `order is not valid (${order.reason})`, order.message.split('; '));
  if (env.signatures.some((s) => s.keyid === key.keyId)) throw new AgentError('order_cosign', `key ${key.keyId} already signed this envelope`);
  if (env.signatures.length >= 8) throw new AgentError('order_cosign', 'the envelope already carries 8 signatures, the most an envelope may hold');
  return { envelope: addSignature(env, key), order: order.order };
}
