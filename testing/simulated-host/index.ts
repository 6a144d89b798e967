export { SimulatedHost, type Fault as HostFault, type ExecutedCommand, type ApplianceProfile, type SimulatedHostInit } from './simulated-host.js';
export {
  simulatedAppliance,
  baselineFor,
  SAMPLE_FLAKE_REF,
  SAMPLE_FLAKE_SOURCE,
  SAMPLE_REVISION,
  SAMPLE_PREVIOUS_REVISION,
  SAMPLE_NOW,
  type ApplianceOptions,
} from './appliance.js';
export { sampleRuleset } from './firewall.js';
export type { Generation, GenerationSpec, RebuildMode, RebuildScript, RollbackMode, SystemClosure } from './generations.js';
export type { SimVolume } from './disks.js';
export type { NtpState } from './ntp.js';
export type { UnitKind, ActiveState } from './units.js';
