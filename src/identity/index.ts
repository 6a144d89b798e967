export { enroll, type EnrollOptions, type EnrollOutcome, type EnrollmentRecord, type TokenRemoval } from './enroll.js';
export { IdentityLifecycle, type IdentityAssessment, type IdentityStatus, type IdentityState, type PollOutcome } from './lifecycle.js';
export { settleRenewal, renewalDueAt, readCurrentIdentity } from './renew.js';
export { stageKeyRotation, settleRotation, type PendingRotation } from './rotation.js';
export { identityPaths, type IdentityPaths } from './files.js';
export { machineIdentifier } from './machine-id.js';
export { EnrollRequestSchema, RenewRequestSchema, REFUSAL_CODES, keyFingerprint, tokenHash } from './protocol.js';
