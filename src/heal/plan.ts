import type { Baseline, Config } from '../config/index.js';
import { getCheck, type CheckName, type CheckResult } from '../checks/index.js';
import { ORDER_CONTROLS, type Order, type OrderType } from '../orders/index.js';
import { actionIsDisruptive, actionKey, allowedActions, hintActions, uniqueActions, type HealAction } from './actions.js';
import { clockSanity, type ClockSanity } from './clock.js';
import { inWindow, nextWindowOpen, type MaintenanceWindow } from './window.js';

export interface HealPlan {
  readonly orderId: string;
  readonly orderType: OrderType;
  /** What the plan is about, for the evidence `check` field. */
  readonly checks: readonly CheckName[];
  readonly actions: readonly HealAction[];
  /** Checks of the order in drift that the repertoire cannot heal, and why. */
  readonly unhealable: readonly { check: CheckName; why: string }[];
}

/**
 * From the order and the latest check results to actions of the fixed repertoire only. A heal
 * order heals only what is in drift: the units the services check found down (and the baseline
 * requires), the baseline's flake for patching or firewall drift, the baseline's backup unit.
 */
export function planHeal(order: Order, baseline: Baseline, results: readonly CheckResult[]): HealPlan {
  const base = { orderId: order.order_id, orderType: order.type };
  switch (order.type) {
    case 'run_checks':
    case 'heartbeat':
      return { ...base, checks: orderChecks(order), actions: [], unhealable: [] };
    case 'apply_baseline':
    case 'apply_closure':
    case 'rollback':
      return { ...base, checks: orderChecks(order), actions: allowedActions(order, baseline), unhealable: [] };
    case 'heal': {
      const actions: HealAction[] = [];
      const unhealable: { check: CheckName; why: string }[] = [];
      for (const name of order.params.checks) {
        const r = results.find((x) => x.check === name);
        const hint = getCheck(name)?.heal;
        if (!r) {
          unhealable.push({ check: name, why: 'the check did not run' });
        } else if (r.status === 'error') {
          unhealable.push({ check: name, why: `the check failed, so the drift is unknown: ${r.summary}` });
        } else if (r.status === 'drift') {
          if (!hint || hint.kind === 'report_only') unhealable.push({ check: name, why: hint ? hint.why : 'no heal is known for this check' });
          // Only the units found down, and only those the baseline requires.
          else
            actions.push(
              ...hintActions(
                hint,
                baseline,
                (r.driftUnits ?? []).filter((u) => baseline.services.required.includes(u)),
              ),
            );
        }
      }
      const unique = uniqueActions(actions);
      // A switch already restarts every unit of the generation: run it first, then what is left.
      unique.sort((a, b) => Number(b.kind === 'rebuild_switch') - Number(a.kind === 'rebuild_switch'));
      return { ...base, checks: order.params.checks, actions: unique, unhealable };
    }
  }
}

/** For a plan with no action: `cannot heal: ...` naming what the repertoire cannot heal, or null when all is compliant. */
export function cannotHeal(plan: HealPlan): string | null {
  return plan.unhealable.length ? `cannot heal: ${plan.unhealable.map((u) => `${u.check}: ${u.why}`).join('; ')}` : null;
}

export interface TimingContext {
  readonly window: MaintenanceWindow;
  readonly allowDisruptiveOutsideWindow: boolean;
  readonly clock: ClockSanity;
  readonly now: number;
}

export type Timing = { act: true } | { act: false; reason: string; retryAt: number | null };

/**
 * Nothing disruptive outside the window (unless allowed) or with an insane clock.
 * Non-disruptive actions run at once. A plan is deferred whole, so an order is applied once.
 */
export function decideTiming(actions: readonly HealAction[], t: TimingContext): Timing {
  const disruptive = actions.filter(actionIsDisruptive);
  if (disruptive.length === 0) return { act: true };
  const what = `disruptive action(s) (${disruptive.map(actionKey).join('; ')})`;
  if (!t.clock.sane) return { act: false, reason: `${what} deferred: ${t.clock.reason}`, retryAt: null };
  if (!t.allowDisruptiveOutsideWindow && !inWindow(t.window, t.now)) {
    const opens = nextWindowOpen(t.window, t.now);
    return {
      act: false,
      reason: `${what} deferred: outside the maintenance window ${t.window.text} UTC; next opens ${new Date(opens).toISOString()}`,
      retryAt: opens,
    };
  }
  return { act: true };
}

/** The one place a plan's timing is decided from config: the window, the exception to it, and the clock the `time` check saw. */
export function timingFor(
  actions: readonly HealAction[],
  config: Pick<Config, 'allowDisruptiveOutsideWindow' | 'ntpMaxSkewMs'>,
  window: MaintenanceWindow,
  results: readonly CheckResult[],
  now: number,
): Timing {
  return decideTiming(actions, { window, allowDisruptiveOutsideWindow: config.allowDisruptiveOutsideWindow, clock: clockSanity(results, config.ntpMaxSkewMs), now });
}

/** The checks an order is about: the evidence `check` field of its bundles. */
export function orderChecks(order: Order): CheckName[] {
  switch (order.type) {
    case 'run_checks':
      return [...(order.params.checks ?? [])];
    case 'heartbeat':
      return [];
    case 'heal':
      return [...order.params.checks];
    case 'apply_baseline':
    case 'apply_closure':
    case 'rollback':
      return ['patching'];
  }
}

export function evidenceCheckName(checks: readonly string[]): string {
  return checks.length ? checks.join('+') : 'order';
}

/** The controls of the checks concerned, plus change management and order integrity. */
export function controlsFor(checks: readonly CheckName[]): string[] {
  return [...new Set([...checks.flatMap((c) => getCheck(c)?.controls ?? []), ...ORDER_CONTROLS])];
}
