import type { Check, CheckContext, CheckName, CheckResult } from './types.js';
import { CHECK_NAMES } from './types.js';
import { patchingCheck } from './patching.js';
import { servicesCheck } from './services.js';
import { backupCheck } from './backup.js';
import { firewallCheck } from './firewall.js';
import { encryptionCheck } from './encryption.js';
import { timeCheck } from './time.js';
import { CHECK_TIMEOUT_MS, runChecksIn } from './run.js';
import type { CheckCadence } from './cadence.js';

export type { Check, CheckContext, CheckName, CheckResult, CheckStatus, HealHint } from './types.js';
export { CHECK_NAMES } from './types.js';
export { systemFacts, type SystemFacts } from './facts.js';
export { rulesetHash, normaliseRuleset, type NormalisedRuleset } from './ruleset.js';
export { isDisruptiveUnit } from './services.js';
export { CheckCadence } from './cadence.js';

/** The six drift checks, in CHECK_NAMES order. */
export const ALL_CHECKS: readonly Check[] = [patchingCheck, servicesCheck, backupCheck, firewallCheck, encryptionCheck, timeCheck];

export function getCheck(name: string): Check | undefined {
  return ALL_CHECKS.find((c) => c.name === name);
}

export function isCheckName(name: string): name is CheckName {
  return (CHECK_NAMES as readonly string[]).includes(name);
}

/** Run the named checks (all by default) concurrently, each under its own deadline; never throws. */
export function runChecks(ctx: CheckContext, names?: readonly CheckName[], opts: { timeoutMs?: number; cadence?: CheckCadence } = {}): Promise<CheckResult[]> {
  return runChecksIn(opts.cadence ? opts.cadence.wrap(ALL_CHECKS) : ALL_CHECKS, ctx, names, opts.timeoutMs ?? CHECK_TIMEOUT_MS);
}
