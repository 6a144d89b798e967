import * as z from 'zod';
import { CHECK_NAMES, type CheckName } from '../checks/index.js';
import { PinnedFlakeRefSchema, RevisionSchema, StorePathSchema, explainIssues, parsePinnedFlakeRef } from '../config/index.js';

/** An order payload is at most 64 KiB (docs/orders.md), checked before anything parses it. */
export const MAX_ORDER_PAYLOAD_BYTES = 64 * 1024;

export const ORDER_TYPES = ['run_checks', 'heal', 'apply_baseline', 'apply_closure', 'rollback', 'heartbeat'] as const;
export type OrderType = (typeof ORDER_TYPES)[number];

const ident = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, dot, dash or underscore');
const checkName = z.enum(CHECK_NAMES as unknown as [CheckName, ...CheckName[]]);
const checkList = z
  .array(checkName)
  .min(1)
  .max(CHECK_NAMES.length)
  .refine((l) => new Set(l).size === l.length, 'must not name a check twice');

/** Fields every order carries, whatever its type. `params` is checked per type afterwards. */
const OrderHeaderSchema = z
  .object({
    order_id: z.uuid(),
    site_id: ident,
    host_id: z.union([ident, z.literal('*')]),
    sequence: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    issued_at: z.iso.datetime(),
    expires_at: z.iso.datetime(),
    /**
     * Optional: the latest time a disruptive action of this order may still run when it waits for
     * the maintenance window. The healer must have recorded the order before expires_at; without
     * execute_by it never acts after expires_at. Bounded by maxDeferral from issued_at.
     */
    execute_by: z.iso.datetime().optional(),
    policy_version: z.string().min(1).max(64),
    type: z.string().min(1).max(64),
    params: z.unknown(),
  })
  .strict();

export const ORDER_PARAMS = {
  run_checks: z.object({ checks: checkList.optional() }).strict(),
  heal: z.object({ checks: checkList }).strict(),
  apply_baseline: z
    .object({
      /** The git commit the built system must report as configurationRevision; the flakeRef pins it. */
      revision: RevisionSchema,
      /** Pinned: `rev=<40 hex>` equal to revision; the allowlist (allowedFlakes) is checked with the config. */
      flakeRef: PinnedFlakeRefSchema,
    })
    .strict()
    .superRefine((p, ctx) => {
      const ref = parsePinnedFlakeRef(p.flakeRef);
      if (ref.ok && ref.value.rev !== p.revision) ctx.addIssue({ code: 'custom', path: ['flakeRef'], message: 'must pin rev= equal to the signed revision' });
    }),
  /** A prebuilt system toplevel, substituted from a signed binary cache and activated; no Nix code is evaluated. */
  apply_closure: z
    .object({
      storePath: StorePathSchema,
      /** The configurationRevision the closure must report before it is activated. */
      revision: RevisionSchema,
    })
    .strict(),
  rollback: z.object({}).strict(),
  /** No action: the MSP's signed proof of liveness; its issued_at is the newest MSP-signed time. */
  heartbeat: z.object({}).strict(),
} as const satisfies Record<OrderType, z.ZodType>;

type Header = Omit<z.output<typeof OrderHeaderSchema>, 'type' | 'params'>;
export type OrderParams = { [T in OrderType]: z.output<(typeof ORDER_PARAMS)[T]> };
/** A fully validated order, discriminated by `type`. */
export type Order = { [T in OrderType]: Header & { type: T; params: OrderParams[T] } }[OrderType];

export type PayloadProblem = { reason: 'bad_payload' | 'unknown_type' | 'bad_params'; message: string };

function isOrderType(t: string): t is OrderType {
  return (ORDER_TYPES as readonly string[]).includes(t);
}

/**
 * Validate a parsed payload in three steps so each failure has its own reason: the header
 * (bad_payload), the closed vocabulary (unknown_type), then the type's params (bad_params).
 * Messages name fields, never echo their values.
 */
export function parseOrderPayload(raw: unknown): { ok: true; order: Order } | ({ ok: false } & PayloadProblem) {
  const header = OrderHeaderSchema.safeParse(raw);
  if (!header.success) return { ok: false, reason: 'bad_payload', message: explainIssues(header.error.issues).join('; ') };
  const h = header.data;
  if (!isOrderType(h.type)) {
    return { ok: false, reason: 'unknown_type', message: `order type is not one of ${ORDER_TYPES.join(', ')}` };
  }
  const params = ORDER_PARAMS[h.type].safeParse(h.params ?? {});
  if (!params.success) {
    const lines = explainIssues(params.error.issues).map((l) => `params.${l}`);
    return { ok: false, reason: 'bad_params', message: `${h.type}: ${lines.join('; ')}` };
  }
  if (Date.parse(h.expires_at) <= Date.parse(h.issued_at)) {
    return { ok: false, reason: 'bad_payload', message: 'expires_at must be after issued_at' };
  }
  if (h.execute_by !== undefined && Date.parse(h.execute_by) < Date.parse(h.expires_at)) {
    return { ok: false, reason: 'bad_payload', message: 'execute_by must not be before expires_at' };
  }
  return { ok: true, order: { ...h, type: h.type, params: params.data } as Order };
}

/** A best-effort order_id from a payload that failed verification, for the rejection evidence. */
export function peekOrderId(raw: unknown): string | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const id = (raw as Record<string, unknown>).order_id;
  return z.uuid().safeParse(id).success ? (id as string) : null;
}
