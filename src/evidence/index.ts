export { EvidenceBundleSchema, ActionTakenSchema, OUTCOMES, type EvidenceBundle, type EvidenceDraft, type EvidenceSpec, type ActionTaken, type Outcome } from './bundle.js';
export { EvidenceChain, readChainHead, newBundleId, type ChainedEvidence, type ChainHead, type DeliveryQueue } from './chain.js';
export { exportEvidence, pruneEvidence, checkpointEvidence, evidenceFileName, type PrunePolicy, type PruneReport } from './store.js';
export { verifyPath, type VerifyReport, type VerifyOptions, type VerifiedBundle } from './verify.js';
export type { Finding, FindingKind } from './finding.js';
export { decodeEvidence, claimedBundle } from './envelope.js';
export { rotationKeyOf, KEY_ROTATION_CHECK } from './key-ring.js';
export { signReceipt, checkReceipt, readStoredReceipts, receiptAcknowledges, type Receipt, type AcceptedReceipt, type ReceiptExpectation } from './receipt.js';
