export { parseWindow, inWindow, nextWindowOpen, type MaintenanceWindow } from './window.js';
export { clockSanity, type ClockSanity } from './clock.js';
export { HealActionSchema, actionCommand, actionIsDisruptive, healIsDisruptive, actionKey, allowedActions, type HealAction } from './actions.js';
export { planHeal, decideTiming, orderChecks, evidenceCheckName, controlsFor, type HealPlan, type Timing, type TimingContext } from './plan.js';
export {
  HealRequestSchema,
  HealResultSchema,
  HEAL_OUTCOMES,
  type HealRequest,
  type HealResult,
  type HealOutcome,
} from './spool.js';
export { waitHealthy, healthProblems, type HealthSpec, type HealthOutcome } from './health.js';
export { generationInfo, type GenerationInfo } from './system-state.js';
export { applyHealRequests, planProblem, type HealerDeps, type HealerRun } from './apply.js';
export { DEFAULT_HEAL_TIMEOUTS, type HealTimeouts } from './request-run.js';
export { Healing, HEAL_RESULT_BOUND_MS, type HealingContext, type Requested, type Collected } from './healing.js';
export { Spool } from './request-spool.js';
export { HealerState, initHealerState } from './healer-state.js';
export { initHealTree, resolveAgentIdentity, recordHealerFailure } from './install.js';
