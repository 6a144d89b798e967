export { HttpsClient, type HttpsTimeouts, type HttpsResponse, type HttpsFailure } from './https-client.js';
export { describeTransportError, type Peer } from './transport-error.js';
export { isRetryableStatus } from './retryable-status.js';
