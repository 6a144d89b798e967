import type { CheckResult } from './types.js';

/** The system facts every evidence bundle carries (docs/evidence.md), from the latest check results. */
export interface SystemFacts {
  readonly ruleset_hash: string | null;
  readonly nixos_revision: string | null;
  readonly derivation_digest: string | null;
  readonly ntp_offset_ms: number | null;
}

function observedOf(results: readonly CheckResult[], check: CheckResult['check'], key: string): unknown {
  const r = results.find((x) => x.check === check && x.status !== 'error');
  return r?.observed[key];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function systemFacts(results: readonly CheckResult[]): SystemFacts {
  return {
    ruleset_hash: str(observedOf(results, 'firewall', 'rulesetHash')),
    nixos_revision: str(observedOf(results, 'patching', 'nixosVersion')),
    derivation_digest: str(observedOf(results, 'patching', 'derivationDigest')),
    ntp_offset_ms: num(observedOf(results, 'time', 'offsetMs')),
  };
}
