import { z } from 'zod';
import { UnitNameSchema, type Baseline } from '../config/index.js';
import { getCheck, isDisruptiveUnit, type HealHint } from '../checks/index.js';
import { FlakeRefSchema, type Order } from '../orders/index.js';

/**
 * The healer's whole repertoire. Nothing else can be expressed, so nothing else can be requested:
 * no shell, no arbitrary unit, no flake an operator did not sign or the baseline name. Unit names
 * follow the baseline's pattern and come after `--`, so none can read as an option.
 */
export const HealActionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('rebuild_switch'), flakeRef: FlakeRefSchema }).strict(),
  z.object({ kind: z.literal('rollback') }).strict(),
  z.object({ kind: z.literal('restart_unit'), unit: UnitNameSchema }).strict(),
  z.object({ kind: z.literal('start_backup'), unit: UnitNameSchema }).strict(),
]);
export type HealAction = z.infer<typeof HealActionSchema>;

export function actionCommand(a: HealAction): { command: string; args: string[] } {
  switch (a.kind) {
    case 'rebuild_switch':
      return { command: 'nixos-rebuild', args: ['switch', '--flake', a.flakeRef] };
    case 'rollback':
      return { command: 'nixos-rebuild', args: ['switch', '--rollback'] };
    case 'restart_unit':
      return { command: 'systemctl', args: ['restart', '--', a.unit] };
    case 'start_backup':
      return { command: 'systemctl', args: ['start', '--', a.unit] };
  }
}

/** Switching generations restarts services; restarting journald and friends interrupts the appliance. */
export function actionIsDisruptive(a: HealAction): boolean {
  switch (a.kind) {
    case 'rebuild_switch':
    case 'rollback':
      return true;
    case 'restart_unit':
      return isDisruptiveUnit(a.unit);
    case 'start_backup':
      return false;
  }
}

export function isSwitch(a: HealAction): a is Extract<HealAction, { kind: 'rebuild_switch' | 'rollback' }> {
  return a.kind === 'rebuild_switch' || a.kind === 'rollback';
}

export function actionKey(a: HealAction): string {
  return [actionCommand(a).command, ...actionCommand(a).args].join(' ');
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

/** Each action once, first occurrence kept. */
export function uniqueActions(actions: readonly HealAction[]): HealAction[] {
  const seen = new Set<string>();
  return actions.filter((a) => !seen.has(actionKey(a)) && Boolean(seen.add(actionKey(a))));
}

/**
 * Every action a signed order may lead to on this appliance, whatever the drift: the healer
 * accepts a plan only if it is a subset of this. heal: the baseline's flake, its required units,
 * its backup unit, per the hint of each named check; apply_baseline: the signed flakeRef;
 * rollback: the rollback.
 */
export function allowedActions(order: Order, baseline: Baseline): HealAction[] {
  switch (order.type) {
    case 'run_checks':
      return [];
    case 'apply_baseline':
      return [{ kind: 'rebuild_switch', flakeRef: order.params.flakeRef }];
    case 'rollback':
      return [{ kind: 'rollback' }];
    case 'heal':
      return uniqueActions(order.params.checks.flatMap((name) => {
        const hint = getCheck(name)?.heal;
        return hint ? hintActions(hint, baseline) : [];
      }));
  }
}
