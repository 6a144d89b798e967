import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, basename } from 'node:path';
import { verifyEnvelope, envelopeHash, EnvelopeSchema, EVIDENCE_PAYLOAD_TYPE, type PublicKey } from '../crypto/index.js';
import { parseJsonText } from '../common/index.js';
import { EvidenceBundleSchema, type EvidenceBundle } from './bundle.js';
import { KeyRing } from './key-ring.js';

export type FindingKind = 'unreadable' | 'bad_envelope' | 'bad_signature' | 'unknown_key' | 'bad_bundle' | 'gap' | 'broken_link' | 'duplicate_seq' | 'misnamed';

export interface Finding {
  readonly kind: FindingKind;
  readonly file: string;
  readonly message: string;
}

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
}

/** Verify one envelope file: signature by a trusted key, payload type, bundle schema. */
export function verifyEnvelopeFile(file: string, keys: readonly PublicKey[]): VerifiedBundle | Finding {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { kind: 'unreadable', file, message: `${basename(file)}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  const parsed = parseJsonText(text);
  if (!parsed.ok) return { kind: 'unreadable', file, message: `${basename(file)}: ${parsed.message}` };
  const json = parsed.value;
  const check = verifyEnvelope(json, EVIDENCE_PAYLOAD_TYPE, keys);
  if (!check.ok) {
    const kind: FindingKind = check.reason === 'bad_signature' ? 'bad_signature' : check.reason === 'unknown_key' ? 'unknown_key' : 'bad_envelope';
    return { kind, file, message: `${basename(file)}: ${check.message}${kind === 'bad_signature' ? ' (tampered or signed by another key)' : ''}` };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(check.payload.toString('utf8'));
  } catch {
    return { kind: 'bad_bundle', file, message: `${basename(file)}: signed payload is not JSON` };
  }
  const bundle = EvidenceBundleSchema.safeParse(payload);
  if (!bundle.success) {
    return { kind: 'bad_bundle', file, message: `${basename(file)}: signed payload is not an evidence bundle (${bundle.error.issues[0]?.path.join('.')}: ${bundle.error.issues[0]?.message})` };
  }
  return { file, bundle: bundle.data, hash: envelopeHash(EnvelopeSchema.parse(json)) };
}

function isFinding(x: VerifiedBundle | Finding): x is Finding {
  return 'kind' in x;
}

/**
 * Verify a file or a directory of envelopes. For a directory every envelope is checked and then the
 * chain per host: seq strictly consecutive, each prev_hash equal to the hash of the envelope before.
 * The first bundle may point at a pruned predecessor; every later break is named.
 */
export function verifyPath(path: string, keys: readonly PublicKey[], onProgress?: (done: number, total: number) => void): VerifyReport {
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
    onProgress?.(i + 1, files.length);
  }
  // A bundle that failed its own check is already named; the hole it leaves in the chain is not a
  // second problem (its file name still says which seq it held).
  const namedSeqs = new Set(findings.map((f) => /^(\d{10})-/.exec(basename(f.file))).flatMap((m) => (m ? [Number(m[1])] : [])));
  const hosts: VerifyReport['hosts'][number][] = [];
  if (isDir) {
    for (const v of verified) {
      const m = /^(\d{10})-/.exec(basename(v.file));
      if (m && Number(m[1]) !== v.bundle.seq) {
        findings.push({ kind: 'misnamed', file: v.file, message: `${basename(v.file)}: file name says seq ${Number(m[1])} but the signed bundle is seq ${v.bundle.seq} (reordered)` });
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
          findings.push({ kind: 'duplicate_seq', file: cur.file, message: `${name}: host ${hostId} has two bundles with seq ${cur.bundle.seq} (${prev.bundle.bundle_id}, ${cur.bundle.bundle_id})` });
        } else if (cur.bundle.seq !== prev.bundle.seq + 1) {
          const missing = cur.bundle.seq - prev.bundle.seq - 1;
          if (missing <= namedSeqs.size && Array.from({ length: missing }, (_, k) => prev.bundle.seq + 1 + k).every((s) => namedSeqs.has(s))) continue;
          findings.push({ kind: 'gap', file: cur.file, message: `host ${hostId}: ${missing} bundle(s) missing between seq ${prev.bundle.seq} and ${cur.bundle.seq} (deleted or withheld)` });
        } else if (cur.bundle.prev_hash !== prev.hash) {
          findings.push({ kind: 'broken_link', file: cur.file, message: `${name}: seq ${cur.bundle.seq} does not follow seq ${prev.bundle.seq} (prev_hash mismatch: replaced, reordered or forked)` });
        }
      }
      const last = list[list.length - 1]!;
      hosts.push({ hostId, first: list[0]!.bundle.seq, last: last.bundle.seq, count: list.length, headHash: last.hash });
    }
  }
  return { ok: findings.length === 0 && verified.length > 0, verified, findings, hosts };
}
