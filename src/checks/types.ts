import type { Baseline, Config } from '../config/index.js';
import type { Host } from '../host/index.js';

export type CheckName = 'patching' | 'services' | 'backup' | 'firewall' | 'encryption' | 'time';
export const CHECK_NAMES: readonly CheckName[] = ['patching', 'services', 'backup', 'firewall', 'encryption', 'time'];

/** How a drift is healed: only actions from the healer's fixed repertoire, or none. */
export type HealHint =
  | { kind: 'rebuild' } // build the pinned baseline.patching.flakeRef, check its revision, activate it
  | { kind: 'restart_units' } // systemctl restart <units the baseline names>
  | { kind: 'start_backup' } // systemctl start <baseline.backup.unit>
  | { kind: 'report_only'; why: string };

export interface CheckContext {
  readonly host: Host;
  readonly config: Config;
  readonly baseline: Baseline;
}

export type CheckStatus = 'compliant' | 'drift' | 'error';

export interface CheckResult {
  readonly check: CheckName;
  readonly status: CheckStatus;
  /** One human sentence: what was found. No secrets, no file contents. */
  readonly summary: string;
  /** What was observed, JSON-safe; becomes pre_state/post_state in evidence. */
  readonly observed: Record<string, unknown>;
  /** What the baseline expects, JSON-safe. */
  readonly expected: Record<string, unknown>;
  /** For services drift: the units that are not active (the restart targets). */
  readonly driftUnits?: readonly string[];
  readonly durationMs: number;
  /**
   * Set when the agent reused an earlier cycle's result (CheckCadence): when that result was
   * observed, host clock ms. Absent: observed by this run.
   */
  readonly reusedFrom?: number;
}

export interface Check {
  readonly name: CheckName;
  /** HIPAA 164.312 / SOC 2 control identifiers this check gives evidence for. */
  readonly controls: readonly string[];
  readonly heal: HealHint;
  run(ctx: CheckContext): Promise<CheckResult>;
}
