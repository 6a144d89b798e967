/**
 * Whether an HTTP status leaves the request worth repeating later: the peer is overloaded, down
 * or timed out (408, 429, 5xx). Any other non-success status is a verdict on the request itself.
 */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}
