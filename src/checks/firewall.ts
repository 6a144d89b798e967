import type { Check } from './types.js';
import { runCommand } from './exec.js';
import { resultMaker } from './result.js';
import { hashNormalised, normaliseRuleset } from './ruleset.js';

const short = (h: string): string => `${h.slice(0, 'sha256:'.length + 12)}…`;

/**
 * sha256 of the normalised `nft list ruleset` against the baseline. Heals by a rebuild, which
 * reloads the declared ruleset: disruptive (the reload briefly drops the egress allowlist).
 */
export const firewallCheck: Check = {
  name: 'firewall',
  controls: ['HIPAA 164.312(e)(1)', 'HIPAA 164.312(a)(1)', 'SOC 2 CC6.1', 'SOC 2 CC6.6'],
  disruptive: true,
  heal: { kind: 'rebuild' },
  async run(ctx) {
    const expected = { rulesetHash: ctx.baseline.firewall.rulesetHash };
    const done = resultMaker('firewall', ctx, expected);
    const r = await runCommand(ctx.host, 'nft', ['list', 'ruleset']);
    if (!r.ok) {
      const denied = r.result.status === 'nonzero' && /Operation not permitted/.test(r.result.stderr);
      return done('error', denied ? 'nft list ruleset: permission denied (listing the ruleset needs CAP_NET_ADMIN)' : r.why);
    }
    const n = normaliseRuleset(r.stdout);
    if (!n.ok) return done('error', `nft list ruleset printed something that is not a ruleset: ${n.reason}`);
    const rulesetHash = hashNormalised(n.text);
    const observed = { rulesetHash, tables: n.tables };
    if (n.tables.length === 0) return done('drift', 'the firewall ruleset is empty: nothing is filtered', observed);
    if (rulesetHash !== expected.rulesetHash) {
      return done('drift', `ruleset ${short(rulesetHash)} differs from the baseline ${short(expected.rulesetHash)} (tables: ${n.tables.join(', ')})`, observed);
    }
    return done('compliant', `ruleset matches the baseline (${n.tables.length} table(s): ${n.tables.join(', ')})`, observed);
  },
};
