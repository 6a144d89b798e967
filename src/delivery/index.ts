export { HttpsClient, type HttpsClientOptions, type HttpsTimeouts, type HttpsTrust, type HttpsRequest, type HttpsResponse, type HttpsOutcome, type HttpsFailure } from './https-client.js';
export { describeTransportError, type Peer, type TransportFailure, type TransportFailureCode } from './transport-error.js';
export { isRetryableStatus } from './retryable-status.js';
