export { Outbox } from './outbox.js';
export { flushDestination, type FlushOptions, type FlushReport } from './flush.js';
export { backoffDelay } from './backoff.js';
export { DESTINATIONS, type Destination, type OutboxItem, type DeliveryResult, type OutboxOptions, type DestinationStats, type DeadLetter } from './types.js';
