import * as z from 'zod';
import { RECEIPT_PAYLOAD_TYPE, canonicalEnvelope, signEnvelope, verifyEnvelope, openEnvelope, type Envelope, type PublicKey, type SecretKey } from '../crypto/index.js';
import type { StateDb } from '../state/index.js';

const sha256Ref = z.string().regex(/^sha256:[0-9a-f]{64}$/);

/**
 * What the MCP signs for each bundle it stored: the bundle it names and the hash of the exact
 * envelope (the same `sha256:` of the compact envelope the next bundle's prev_hash uses), so a
 * receipt can acknowledge that envelope and nothing else.
 */
const ReceiptSchema = z
  .object({
    receipt_id: z.string().min(1).max(256),
    bundle_id: z.uuid(),
    envelope_hash: sha256Ref,
    site_id: z.string().min(1).max(128),
    host_id: z.string().min(1).max(128),
    seq: z.number().int().positive(),
    received_at: z.iso.datetime(),
  })
  .strict();
export type Receipt = z.infer<typeof ReceiptSchema>;

/** A receipt the agent accepted: its fields, the canonical envelope it came in, and who signed it. */
export interface AcceptedReceipt {
  readonly receipt: Receipt;
  /** Compact DSSE envelope JSON, as stored and as `verify --receipts` reads it. */
  readonly envelope: string;
  /** The MCP key that signed it; null when no mcpReceiptKeys are pinned (bound but not countersigned). */
  readonly keyid: string | null;
}

/** What the receipt must name: the bundle that was sent, by id, seq, host and envelope hash. */
export interface ReceiptExpectation {
  readonly bundleId: string;
  readonly envelopeHash: string;
  readonly seq: number;
  readonly hostId: string;
}

export type ReceiptCheck = { readonly ok: true; readonly accepted: AcceptedReceipt } | { readonly ok: false; readonly message: string };

/** MCP side: sign a receipt with the MCP's receipt key. */
export function signReceipt(receipt: Receipt, key: SecretKey): Envelope {
  return signEnvelope(RECEIPT_PAYLOAD_TYPE, Buffer.from(JSON.stringify(ReceiptSchema.parse(receipt)), 'utf8'), key);
}

/**
 * Check a receipt envelope: signed by one of `keys` (skipped only when none is pinned), of the
 * receipt payload type, and, when `expected` is given, naming exactly that bundle and envelope.
 * Messages name fields and keys, never echo the server's values.
 */
export function checkReceipt(input: unknown, expected: ReceiptExpectation | null, keys: readonly PublicKey[]): ReceiptCheck {
  const opened = openEnvelope(input, RECEIPT_PAYLOAD_TYPE);
  if (!opened.ok) return { ok: false, message: opened.reason === 'bad_envelope' ? 'receipt is not a DSSE envelope' : `receipt ${opened.message}` };
  let keyid: string | null = null;
  if (keys.length > 0) {
    const v = verifyEnvelope(opened.envelope, RECEIPT_PAYLOAD_TYPE, keys);
    if (!v.ok) return { ok: false, message: `receipt is not countersigned by a pinned MCP receipt key (${v.reason}: ${v.message})` };
    keyid = v.keyid;
  }
  const payload = opened.payload;
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, message: 'receipt payload is not JSON' };
  }
  const parsed = ReceiptSchema.safeParse(json);
  if (!parsed.success)
    return { ok: false, message: `receipt payload is not a receipt (${parsed.error.issues[0]?.path.join('.') || '(root)'}: ${parsed.error.issues[0]?.message})` };
  const r = parsed.data;
  if (expected) {
    if (r.bundle_id !== expected.bundleId) return { ok: false, message: `receipt names another bundle than ${expected.bundleId}` };
    if (r.envelope_hash !== expected.envelopeHash)
      return { ok: false, message: `receipt for bundle ${expected.bundleId} names another envelope hash than ${expected.envelopeHash}` };
    if (r.seq !== expected.seq || r.host_id !== expected.hostId)
      return { ok: false, message: `receipt for bundle ${expected.bundleId} names another host or seq than ${expected.hostId} seq ${expected.seq}` };
  }
  return { ok: true, accepted: { receipt: r, envelope: canonicalEnvelope(opened.envelope), keyid } };
}

/** Stored receipts, oldest first; `verify --receipts STATE.db` and `prune` read them. */
export function readStoredReceipts(db: StateDb): string[] {
  return (db.prepare('SELECT receipt FROM receipts ORDER BY host_id, seq').all() as { receipt: string }[]).map((r) => r.receipt);
}

/**
 * Whether a stored bundle has a stored receipt that verifies under `keys` and names its exact
 * envelope hash: the only bundles prune may delete. No pinned key, nothing is acknowledged.
 * Checked per bundle, so a prune verifies only the receipts of the bundles it may delete.
 */
export function receiptAcknowledges(db: StateDb, keys: readonly PublicKey[]): (bundle: ReceiptExpectation) => boolean {
  const get = db.prepare('SELECT receipt FROM receipts WHERE bundle_id = ?');
  return (bundle) => {
    if (keys.length === 0) return false;
    const row = get.get(bundle.bundleId) as { receipt: string } | undefined;
    if (!row) return false;
    let json: unknown;
    try {
      json = JSON.parse(row.receipt);
    } catch {
      return false;
    }
    return checkReceipt(json, bundle, keys).ok;
  };
}
