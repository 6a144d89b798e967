export { enroll, type EnrollOutcome } from './enroll.js';
export { IdentityLifecycle, type IdentityAssessment, type PollOutcome } from './lifecycle.js';
export { settleRenewal } from './renew.js';
export { stageKeyRotation, settleRotation } from './rotation.js';
export { identityPaths } from './files.js';
export { EnrollRequestSchema, RenewRequestSchema, tokenHash } from './protocol.js';
