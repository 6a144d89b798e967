export { Outbox, outboxStats } from './outbox.js';
export { flushDestination, type FlushOptions, type FlushReport } from './flush.js';
export { backoffDelay } from './backoff.js';
export {
  DESTINATIONS,
  type Destination,
  type OutboxItem,
  type DeliveryResult,
  type Deliver,
  type OutboxOptions,
  type DestinationStats,
  type QueueDepth,
  type DeadLetter,
} from './types.js';
export {
  listDeadLetters,
  hasDeadLetterBookkeeping,
  applyOperatorAction,
  unsignedOperatorActions,
  markActionSigned,
  unalertedDeadLetters,
  markAlerted,
  type DeadLetterDetail,
  type DeadLetterSelection,
  type OperatorAction,
  type OperatorIdentity,
} from './dead-letters.js';
