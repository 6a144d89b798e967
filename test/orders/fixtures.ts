import { randomUUID } from 'node:crypto';
import { publicKeyOf, randomSeed, signEnvelope, ORDER_PAYLOAD_TYPE, formatPublicKey, type Envelope, type PublicKey, type SecretKey } from '../../src/crypto/index.js';
import type { VerifyContext } from '../../src/orders/index.js';

const SITE = 'clinic-001';
const HOST = 'appliance-1';
/** 2026-11-23T12:00:00Z: a fixed "now" for order tests. */
export const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

export function makeKey(name: string, seed: Uint8Array = randomSeed()): { secret: SecretKey; pub: PublicKey; text: string } {
  const publicKey = publicKeyOf(seed);
  return { secret: { keyId: name, seed, publicKey }, pub: { keyId: name, publicKey }, text: formatPublicKey(name, publicKey) };
}

export function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

let nextSequence = 1;

/** A valid order payload issued at `now`, expiring 10 minutes later. */
export function orderPayload(overrides: Record<string, unknown> = {}, now = NOW): Record<string, unknown> {
  return {
    order_id: randomUUID(),
    site_id: SITE,
    host_id: HOST,
    sequence: nextSequence++,
    issued_at: iso(now),
    expires_at: iso(now + 600_000),
    policy_version: '1.0',
    type: 'run_checks',
    params: {},
    ...overrides,
  };
}

export function signPayload(payload: unknown, key: SecretKey, payloadType = ORDER_PAYLOAD_TYPE): Envelope {
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(JSON.stringify(payload));
  return signEnvelope(payloadType, bytes, key);
}

export function context(keys: PublicKey[], overrides: Partial<VerifyContext> = {}): VerifyContext {
  return { trustedKeys: keys, siteId: SITE, hostId: HOST, orderTtlS: 900, ntpMaxSkewMs: 5000, now: NOW, ...overrides };
}

/** A config.json for CLI tests of order verify: direct mode, credential paths that are never read. */
export function cliConfig(fields: Record<string, unknown> & { trustedOrderKeys: string[]; stateDir: string }): string {
  return JSON.stringify({
    siteId: SITE,
    hostId: HOST,
    deploymentMode: 'direct',
    baselinePath: '/etc/compliance-agent/baseline.json',
    clientCertFile: '/run/credentials/client.crt',
    clientKeyFile: '/run/credentials/client.key',
    signingKeyFile: '/run/credentials/evidence.key',
    caFile: '/etc/compliance-agent/ca.pem',
    ...fields,
  });
}
