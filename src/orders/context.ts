import type { Config } from '../config/index.js';
import { parsePublicKey, type PublicKey } from '../crypto/index.js';
import type { VerifyContext } from './verify.js';

/** config.trustedOrderKeys as keys: several at once for rotation; a key removed here stops its orders. */
export function trustedKeysFromConfig(config: Pick<Config, 'trustedOrderKeys'>): PublicKey[] {
  return config.trustedOrderKeys.map((k, i) => parsePublicKey(k, `trustedOrderKeys.${i}`));
}

export function verifyContextFromConfig(config: Pick<Config, 'trustedOrderKeys' | 'siteId' | 'hostId' | 'orderTtl' | 'ntpMaxSkewMs' | 'maxDeferral'>, now: number): VerifyContext {
  return {
    trustedKeys: trustedKeysFromConfig(config),
    siteId: config.siteId,
    hostId: config.hostId,
    orderTtlS: config.orderTtl,
    ntpMaxSkewMs: config.ntpMaxSkewMs,
    maxDeferralS: config.maxDeferral,
    now,
  };
}
