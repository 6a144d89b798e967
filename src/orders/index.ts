export { ORDER_TYPES, type Order, type OrderType, type OrderParams } from './schema.js';
export { REJECT_REASONS, checkOrder, verifyOrder, type RejectReason, type Rejection, type OrderDecision, type OrderCheck, type VerifyContext } from './verify.js';
export { sqliteOrderState, readOnlyOrderState, newestSignedAt, type OrderState, type RejectedOrderRecord } from './state.js';
export { admitRejection, DEFAULT_REJECTION_LIMIT, type RateLimit, type Admission } from './rate-limit.js';
export { rejectionEvidence, ORDER_CONTROLS } from './evidence.js';
export { countRejection, rejectionCounts } from './rejection-counts.js';
export { prepareOrder, signOrder, cosignOrder, ttlProblem, DEFAULT_ORDER_TTL_S } from './sign.js';
export { withNextSequence } from './sequence-file.js';
export { verifyContextFromConfig, allowedFlakesFor } from './context.js';
