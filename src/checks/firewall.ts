import type { Check, CheckContext } from './types.js';
import { runCommand } from './exec.js';
import { startResult } from './result.js';
import { hashNormalised, normaliseRuleset } from './ruleset.js';
import { readSnapshot } from './snapshot.js';

const short = (h: string): string => `${h.slice(0, 'sha256:'.length + 12)}…`;

type Listing = { ok: true; text: string; source: string } | { ok: false; message: string };

/** The ruleset text: from the root-written snapshot when configured, else from `nft list ruleset`. */
async function listRuleset(ctx: CheckContext): Promise<Listing> {
  const file = ctx.config.rulesetSnapshotFile;
  if (file) {
    const snapshot = await readSnapshot(ctx, file);
    return snapshot.ok ? { ok: true, text: snapshot.text, source: file } : { ok: false, message: `ruleset snapshot ${snapshot.message}` };
  }
  const r = await runCommand(ctx.host, 'nft', ['list', 'ruleset']);
  if (!r.ok) {
    const denied = r.result.status === 'nonzero' && /Operation not permitted/.test(r.result.stderr);
    return { ok: false, message: denied ? 'nft list ruleset: permission denied (listing the ruleset needs CAP_NET_ADMIN; set rulesetSnapshotFile)' : r.message };
  }
  return { ok: true, text: r.stdout, source: 'nft list ruleset' };
}

type Digest = { ok: true; rulesetHash: string; tables: string[] } | { ok: false; reason: string };

/**
 * The last listing and what it normalised to: the snapshot is read every cycle and is almost always
 * the same text, so an identical text is not tokenised and hashed again. Keyed on the whole text:
 * any change, even a byte, is normalised afresh.
 */
let last: { text: string; digest: Digest } | null = null;

function digest(text: string): Digest {
  if (last?.text === text) return last.digest;
  const n = normaliseRuleset(text);
  const d: Digest = n.ok ? { ok: true, rulesetHash: hashNormalised(n.text), tables: n.tables } : { ok: false, reason: n.reason };
  last = { text, digest: d };
  return d;
}

/**
 * sha256 of the normalised `nft list ruleset` against the baseline. Heals by a rebuild, which
 * reloads the declared ruleset: disruptive (the reload briefly drops the egress allowlist).
 */
export const firewallCheck: Check = {
  name: 'firewall',
  controls: ['HIPAA 164.312(e)(1)', 'HIPAA 164.312(a)(1)', 'SOC 2 CC6.1', 'SOC 2 CC6.6'],
  heal: { kind: 'rebuild' },
  async run(ctx) {
    const expected = { rulesetHash: ctx.baseline.firewall.rulesetHash };
    const done = startResult('firewall', ctx, expected);
    const listing = await listRuleset(ctx);
    if (!listing.ok) return done('error', listing.message);
    const n = digest(listing.text);
    if (!n.ok) return done('error', `${listing.source} is not a ruleset: ${n.reason}`);
    const rulesetHash = n.rulesetHash;
    const observed = { rulesetHash, tables: [...n.tables] };
    if (n.tables.length === 0) return done('drift', 'the firewall ruleset is empty: nothing is filtered', observed);
    if (rulesetHash !== expected.rulesetHash) {
      return done('drift', `ruleset ${short(rulesetHash)} differs from the baseline ${short(expected.rulesetHash)} (tables: ${n.tables.join(', ')})`, observed);
    }
    return done('compliant', `ruleset matches the baseline (${n.tables.length} table(s): ${n.tables.join(', ')})`, observed);
  },
};
