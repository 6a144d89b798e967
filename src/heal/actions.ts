import * as z from 'zod';
import { PinnedFlakeRefSchema, RevisionSchema, StorePathSchema, UnitNameSchema, type Baseline } from '../config/index.js';
import { getCheck, isDisruptiveUnit, type CheckResult, type HealHint } from '../checks/index.js';
import type { Order } from '../orders/index.js';

/**
 * The healer's whole repertoire. Nothing else can be expressed, so nothing else can be requested:
 * no shell, no arbitrary unit, no flake that is not pinned and signed or named by the baseline,
 * no store path an operator did not sign. Unit names follow the baseline's pattern and come after
 * `--`, so none can read as an option.
 *
 * rebuild_switch: build the pinned flake's system, check its revision, activate that store path.
 * switch_closure: substitute a signed closure from the configured caches, check, activate.
 * rollback: switch to the generation before the running one (src/heal/activate.ts).
 */
export const HealActionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('rebuild_switch'), flakeRef: PinnedFlakeRefSchema }).strict(),
  z.object({ kind: z.literal('switch_closure'), storePath: StorePathSchema, revision: RevisionSchema }).strict(),
  z.object({ kind: z.literal('rollback') }).strict(),
  z.object({ kind: z.literal('restart_unit'), unit: UnitNameSchema }).strict(),
  z.object({ kind: z.literal('start_backup'), unit: UnitNameSchema }).strict(),
]);
export type HealAction = z.infer<typeof HealActionSchema>;
export type SwitchAction = Extract<HealAction, { kind: 'rebuild_switch' | 'switch_closure' | 'rollback' }>;
export type UnitAction = Extract<HealAction, { kind: 'restart_unit' | 'start_backup' }>;

/** The one command a unit action runs; switches run several steps (src/heal/activate.ts). */
export function actionCommand(a: UnitAction): { command: string; args: string[] } {
  return { command: 'systemctl', args: [a.kind === 'restart_unit' ? 'restart' : 'start', '--', a.unit] };
}

/** Switching generations restarts services; restarting journald and friends interrupts the appliance. */
export function actionIsDisruptive(a: HealAction): boolean {
  switch (a.kind) {
    case 'rebuild_switch':
    case 'switch_closure':
    case 'rollback':
      return true;
    case 'restart_unit':
      return isDisruptiveUnit(a.unit);
    case 'start_backup':
      return false;
  }
}

export function isSwitch(a: HealAction): a is SwitchAction {
  return a.kind === 'rebuild_switch' || a.kind === 'switch_closure' || a.kind === 'rollback';
}

/** One line naming an action; plans are compared by it. A flake follows `--flake` so output summaries can redact it. */
export function actionKey(a: HealAction): string {
  switch (a.kind) {
    case 'rebuild_switch':
      return `build and activate --flake ${a.flakeRef}`;
    case 'switch_closure':
      return `substitute and activate ${a.storePath} (revision ${a.revision})`;
    case 'rollback':
      return 'switch to the previous generation';
    default:
      return ['systemctl', ...actionCommand(a).args].join(' ');
  }
}

/**
 * What a check's heal hint becomes in the repertoire: the baseline's flake, its backup unit, or a
 * restart of `units` (by default every unit the baseline requires). The planner and the healer's
 * own re-derivation both come through here, so they cannot disagree about a hint.
 */
export function hintActions(hint: HealHint, baseline: Baseline, units: readonly string[] = baseline.services.required): HealAction[] {
  switch (hint.kind) {
    case 'rebuild':
      return [{ kind: 'rebuild_switch', flakeRef: baseline.patching.flakeRef }];
    case 'start_backup':
      return [{ kind: 'start_backup', unit: baseline.backup.unit }];
    case 'restart_units':
      return units.map((unit): HealAction => ({ kind: 'restart_unit', unit }));
    case 'report_only':
      return [];
  }
}

/**
 * Whether healing this result may interrupt the appliance: whether an action its check's heal
 * leads to is disruptive (actionIsDisruptive), for services the restart of the units found down.
 * The one answer to the question, for the `check` command as for the healer's timing.
 */
export function healIsDisruptive(result: CheckResult, baseline: Baseline): boolean {
  const hint = getCheck(result.check)?.heal;
  return hint ? hintActions(hint, baseline, result.driftUnits ?? []).some(actionIsDisruptive) : true;
}

/** Each action once, first occurrence kept. */
export function uniqueActions(actions: readonly HealAction[]): HealAction[] {
  const seen = new Set<string>();
  return actions.filter((a) => !seen.has(actionKey(a)) && Boolean(seen.add(actionKey(a))));
}

/**
 * Every action a signed order may lead to on this appliance, whatever the drift: the healer
 * accepts a plan only if it is a subset of this. heal: the baseline's flake, its required units,
 * its backup unit, per the hint of each named check; apply_baseline: the signed flakeRef;
 * apply_closure: the signed store path; rollback: the rollback.
 */
export function allowedActions(order: Order, baseline: Baseline): HealAction[] {
  switch (order.type) {
    case 'run_checks':
    case 'heartbeat':
      return [];
    case 'apply_baseline':
      return [{ kind: 'rebuild_switch', flakeRef: order.params.flakeRef }];
    case 'apply_closure':
      return [{ kind: 'switch_closure', storePath: order.params.storePath, revision: order.params.revision }];
    case 'rollback':
      return [{ kind: 'rollback' }];
    case 'heal':
      return uniqueActions(
        order.params.checks.flatMap((name) => {
          const hint = getCheck(name)?.heal;
          return hint ? hintActions(hint, baseline) : [];
        }),
      );
  }
}
