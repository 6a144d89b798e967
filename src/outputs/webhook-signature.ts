import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), the
 * timestamp in whole seconds. node:crypto computes it; the tests check it byte for byte against
 * the `standardwebhooks` reference library and verify every delivery with it.
 */
export function signWebhook(key: Uint8Array, msgId: string, timestampSeconds: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${msgId}.${timestampSeconds}.${body}`).digest('base64')}`;
}
