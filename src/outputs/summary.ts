import { clip } from '../common/index.js';
import type { EvidenceBundle } from '../evidence/index.js';

/** Longest `reason` a reseller output carries; the signed bundle at the MCP has the full text. */
const MAX_REASON_CHARS = 500;

/**
 * What a reseller (RMM, SIEM) learns about a bundle: identity, outcome and why, never pre/post
 * state contents. `actions` names the fixed-repertoire commands run and how each ended; the flake
 * reference is left out there and in `reason`, where the healer names its commands (it may embed
 * an access token).
 */
export interface EvidenceSummary {
  readonly bundle_id: string;
  readonly seq: number;
  readonly site_id: string;
  readonly host_id: string;
  readonly reseller_id: string | null;
  readonly check: string;
  readonly outcome: EvidenceBundle['outcome'];
  readonly reason: string | null;
  readonly controls: readonly string[];
  readonly timestamp_start: string;
  readonly timestamp_end: string;
  readonly policy_version: string;
  readonly agent_version: string;
  readonly order_id: string | null;
  readonly rollback_available: boolean;
  readonly actions: readonly { readonly command: string; readonly status: string }[];
}

export function summarize(b: EvidenceBundle): EvidenceSummary {
  return {
    bundle_id: b.bundle_id,
    seq: b.seq,
    site_id: b.site_id,
    host_id: b.host_id,
    reseller_id: b.reseller_id,
    check: b.check,
    outcome: b.outcome,
    reason: b.reason === null ? null : clip(withoutFlakeRefText(b.reason), MAX_REASON_CHARS),
    controls: b.controls,
    timestamp_start: b.timestamp_start,
    timestamp_end: b.timestamp_end,
    policy_version: b.policy_version,
    agent_version: b.agent_version,
    order_id: b.order_id,
    rollback_available: b.rollback_available,
    actions: b.action_taken.map((a) => ({ command: [a.command, ...withoutFlakeRef(a.args)].join(' '), status: a.status })),
  };
}

function withoutFlakeRef(args: readonly string[]): string[] {
  return args.map((a, i) => (i > 0 && args[i - 1] === '--flake' ? '[flake]' : a));
}

/**
 * The same in text. A flake reference holds no whitespace or `;`; in the healer's sentences it is
 * followed by whitespace, `;`, `: ` (its status) or `)` (the end of a list of actions).
 */
function withoutFlakeRefText(text: string): string {
  return text.replace(/--flake \S+?(?=\s|;|: |\)(?:\s|$)|$)/g, '--flake [flake]');
}
