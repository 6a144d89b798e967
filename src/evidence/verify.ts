import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, basename } from 'node:path';
import { verifyEnvelope, envelopeHash, EnvelopeSchema, EVIDENCE_PAYLOAD_TYPE, type PublicKey } from '../crypto/index.js';
import { parseJsonText, errnoCode } from '../common/index.js';
import * as z from 'zod';
import type { EvidenceBundle } from './bundle.js';
import { bundleOfPayload } from './envelope.js';
import { KeyRing } from './key-ring.js';
import { checkReceipt } from './receipt.js';
import { CHECKPOINT_CHECK } from './store.js';
import type { Finding, FindingKind } from './finding.js';

export interface VerifiedBundle {
  readonly file: string;
  readonly bundle: EvidenceBundle;
  readonly hash: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly verified: readonly VerifiedBundle[];
  readonly findings: readonly Finding[];
  /** Per host: the first and last seq seen, for the summary line. */
  readonly hosts: readonly { hostId: string; first: number; last: number; count: number; headHash: string }[];
  /** With receipts: how many verified, and which bundles they prove the MCP acknowledged. */
  readonly receipts: {
    readonly checked: number;
    readonly acknowledged: number;
    readonly forPruned: number;
    readonly newest: { hostId: string; seq: number; envelopeHash: string } | null;
  } | null;
}

export interface VerifyOptions {
  /** Called as envelopes are checked (a directory of thousands takes a while). */
  readonly onProgress?: (done: number, total: number) => void;
  /** Expected chain heads (`sha256:` envelope hashes, e.g. the newest one the MSP holds): each must be in the chain. */
  readonly heads?: readonly string[];
  /** The MCP's receipts (compact DSSE envelope JSON), from the state database or an MSP export. */
  readonly receipts?: { readonly source: string; readonly envelopes: readonly string[]; readonly mcpKeys: readonly PublicKey[] };
}

const CheckpointSchema = z.object({
  host_id: z.string(),
  first_pruned_seq: z.number().int().positive(),
  first_pruned_prev_hash: z.string().nullable(),
  last_pruned_seq: z.number().int().positive(),
  last_pruned_hash: z.string(),
  last_pruned_bundle_id: z.string(),
  pruned_count: z.number().int().positive(),
});
type CheckpointFields = z.infer<typeof CheckpointSchema>;

function checkpointOf(b: EvidenceBundle): CheckpointFields | null {
  if (b.check !== CHECKPOINT_CHECK) return null;
  const c = CheckpointSchema.safeParse((b.pre_state as { checkpoint?: unknown } | null)?.checkpoint);
  return c.success ? c.data : null;
}

/**
 * The oldest end: a chain that does not start at seq 1 must start where a checkpoint bundle (chained
 * by `prune`) says the pruned range ended, or inside that range (a prune interrupted while removing
 * its files), with the checkpoint's hash of the last pruned bundle matching the chain.
 */
function anchored(list: readonly VerifiedBundle[]): boolean {
  const first = list[0]!.bundle;
  if (first.seq === 1 && first.prev_hash === null) return true;
  return list.some((v) => {
    const c = checkpointOf(v.bundle);
    if (!c || c.host_id !== first.host_id) return false;
    if (first.seq === c.last_pruned_seq + 1) return first.prev_hash === c.last_pruned_hash;
    if (first.seq >= c.first_pruned_seq && first.seq <= c.last_pruned_seq) return list.find((x) => x.bundle.seq === c.last_pruned_seq)?.hash === c.last_pruned_hash;
    return false;
  });
}

/**
 * Receipts against the chain: each must be countersigned by an MCP key and name a bundle of the
 * chain with its exact hash. One naming a bundle newer than the chain's newest shows the newest
 * end was cut (the MSP acknowledged what the directory no longer holds); older than the chain's
 * first is a pruned bundle, which is fine.
 */
function checkReceipts(
  opts: NonNullable<VerifyOptions['receipts']>,
  verified: readonly VerifiedBundle[],
  hosts: VerifyReport['hosts'],
  findings: Finding[],
): NonNullable<VerifyReport['receipts']> {
  const byId = new Map(verified.map((v) => [v.bundle.bundle_id, v]));
  let acknowledged = 0;
  let forPruned = 0;
  let newest: { hostId: string; seq: number; envelopeHash: string } | null = null;
  opts.envelopes.forEach((text, i) => {
    const where = `${basename(opts.source)} receipt ${i + 1}`;
    const parsed = parseJsonText(text);
    const c = parsed.ok ? checkReceipt(parsed.value, null, opts.mcpKeys) : { ok: false as const, message: parsed.message };
    if (!c.ok) {
      findings.push({ kind: 'bad_receipt', file: opts.source, message: `${where}: ${c.message}` });
      return;
    }
    const r = c.accepted.receipt;
    if (!newest || (r.host_id === newest.hostId ? r.seq > newest.seq : false)) newest = { hostId: r.host_id, seq: r.seq, envelopeHash: r.envelope_hash };
    const v = byId.get(r.bundle_id);
    const host = hosts.find((h) => h.hostId === r.host_id);
    if (v) {
      if (v.hash !== r.envelope_hash || v.bundle.seq !== r.seq) {
        findings.push({
          kind: 'receipt_mismatch',
          file: v.file,
          message: `${basename(v.file)}: the MCP acknowledged bundle ${r.bundle_id} seq ${r.seq} with hash ${r.envelope_hash}, the file holds seq ${v.bundle.seq} with hash ${v.hash} (replaced)`,
        });
      } else acknowledged++;
    } else if (hosts.length === 0) {
      // One envelope verified, not a chain: receipts for other bundles say nothing about it.
      return;
    } else if (host && r.seq < host.first) {
      forPruned++;
    } else if (!host || r.seq > host.last) {
      findings.push({
        kind: 'truncated_end',
        file: opts.source,
        message: `host ${r.host_id}: bundle seq ${r.seq} (${r.bundle_id}, ${r.envelope_hash}) was acknowledged by the MCP but is missing${host ? `; the chain ends at seq ${host.last}` : ''}: the newest bundle(s) were deleted or withheld`,
      });
    } else {
      findings.push({
        kind: 'receipt_mismatch',
        file: opts.source,
        message: `${where}: the MCP acknowledged bundle ${r.bundle_id} as seq ${r.seq}, which the chain holds as another bundle or not at all`,
      });
    }
  });
  return { checked: opts.envelopes.length, acknowledged, forPruned, newest };
}

/** Verify one envelope file: signature by a trusted key, payload type, bundle schema. */
function verifyEnvelopeFile(file: string, keys: readonly PublicKey[]): VerifiedBundle | Finding {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { kind: 'unreadable', file, message: `${basename(file)}: cannot read (${errnoCode(e, 'error')})` };
  }
  const parsed = parseJsonText(text);
  if (!parsed.ok) return { kind: 'unreadable', file, message: `${basename(file)}: ${parsed.message}` };
  const json = parsed.value;
  const check = verifyEnvelope(json, EVIDENCE_PAYLOAD_TYPE, keys);
  if (!check.ok) {
    const kind: FindingKind = check.reason === 'bad_signature' ? 'bad_signature' : check.reason === 'unknown_key' ? 'unknown_key' : 'bad_envelope';
    return { kind, file, message: `${basename(file)}: ${check.message}${kind === 'bad_signature' ? ' (tampered or signed by another key)' : ''}` };
  }
  const bundle = bundleOfPayload(check.payload);
  if (!bundle.ok) return { kind: 'bad_bundle', file, message: `${basename(file)}: signed ${bundle.message}` };
  return { file, bundle: bundle.bundle, hash: envelopeHash(EnvelopeSchema.parse(json)) };
}

function isFinding(x: VerifiedBundle | Finding): x is Finding {
  return 'kind' in x;
}

/**
 * Verify a file or a directory of envelopes. For a directory every envelope is checked and then the
 * chain per host: seq strictly consecutive, each prev_hash equal to the hash of the envelope before.
 * The first bundle may point at a pruned predecessor only when a checkpoint accounts for it, and
 * an expected head (given, or from the MCP's receipts) must be in the chain: truncation at either
 * end is named, as is every break in between.
 */
export function verifyPath(path: string, keys: readonly PublicKey[], options: VerifyOptions = {}): VerifyReport {
  const isDir = statSync(path).isDirectory();
  const files = isDir
    ? readdirSync(path)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => join(path, f))
    : [path];
  const verified: VerifiedBundle[] = [];
  const findings: Finding[] = [];
  // Envelopes in seq order; the ring follows key rotations from the keys given.
  const ring = new KeyRing(keys);
  for (const [i, f] of files.entries()) {
    const r = verifyEnvelopeFile(f, ring.trusted());
    if (isFinding(r)) findings.push(ring.explain(r));
    else {
      verified.push(r);
      ring.observe(r.bundle);
    }
    options.onProgress?.(i + 1, files.length);
  }
  // A bundle that failed its own check is already named; the hole it leaves in the chain is not a
  // second problem (its file name still says which seq it held).
  const namedSeqs = new Set(findings.map((f) => /^(\d{10})-/.exec(basename(f.file))).flatMap((m) => (m ? [Number(m[1])] : [])));
  const hosts: VerifyReport['hosts'][number][] = [];
  if (isDir) {
    for (const v of verified) {
      const m = /^(\d{10})-/.exec(basename(v.file));
      if (m && Number(m[1]) !== v.bundle.seq) {
        findings.push({
          kind: 'misnamed',
          file: v.file,
          message: `${basename(v.file)}: file name says seq ${Number(m[1])} but the signed bundle is seq ${v.bundle.seq} (reordered)`,
        });
      }
    }
    const byHost = new Map<string, VerifiedBundle[]>();
    for (const v of verified) byHost.set(v.bundle.host_id, [...(byHost.get(v.bundle.host_id) ?? []), v]);
    for (const [hostId, list] of [...byHost.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      list.sort((a, b) => a.bundle.seq - b.bundle.seq);
      for (let i = 1; i < list.length; i++) {
        const prev = list[i - 1]!;
        const cur = list[i]!;
        const name = basename(cur.file);
        if (cur.bundle.seq === prev.bundle.seq) {
          findings.push({
            kind: 'duplicate_seq',
            file: cur.file,
            message: `${name}: host ${hostId} has two bundles with seq ${cur.bundle.seq} (${prev.bundle.bundle_id}, ${cur.bundle.bundle_id})`,
          });
        } else if (cur.bundle.seq !== prev.bundle.seq + 1) {
          const missing = cur.bundle.seq - prev.bundle.seq - 1;
          if (missing <= namedSeqs.size && Array.from({ length: missing }, (_, k) => prev.bundle.seq + 1 + k).every((s) => namedSeqs.has(s))) continue;
          findings.push({
            kind: 'gap',
            file: cur.file,
            message: `host ${hostId}: ${missing} bundle(s) missing between seq ${prev.bundle.seq} and ${cur.bundle.seq} (deleted or withheld)`,
          });
        } else if (cur.bundle.prev_hash !== prev.hash) {
          findings.push({
            kind: 'broken_link',
            file: cur.file,
            message: `${name}: seq ${cur.bundle.seq} does not follow seq ${prev.bundle.seq} (prev_hash mismatch: replaced, reordered or forked)`,
          });
        }
      }
      const last = list[list.length - 1]!;
      if (!anchored(list)) {
        const first = list[0]!;
        findings.push({
          kind: 'truncated_start',
          file: first.file,
          message: `host ${hostId}: the chain starts at seq ${first.bundle.seq}, but no checkpoint bundle accounts for seq ${first.bundle.seq - 1}: the oldest bundle(s) (seq ${first.bundle.seq - 1} and before) were deleted or withheld`,
        });
      }
      hosts.push({ hostId, first: list[0]!.bundle.seq, last: last.bundle.seq, count: list.length, headHash: last.hash });
    }
  }
  for (const head of options.heads ?? []) {
    if (verified.some((v) => v.hash === head)) continue;
    const newest = hosts.map((h) => `host ${h.hostId} seq ${h.last} ${h.headHash}`).join(', ') || 'none';
    findings.push({
      kind: 'truncated_end',
      file: path,
      message: `expected head ${head} is not in the chain (newest present: ${newest}): the newest bundle(s) were deleted, withheld or replaced`,
    });
  }
  const receipts = options.receipts ? checkReceipts(options.receipts, verified, hosts, findings) : null;
  return { ok: findings.length === 0 && verified.length > 0, verified, findings, hosts, receipts };
}
