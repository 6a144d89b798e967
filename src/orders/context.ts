import { AgentError } from '../common/index.js';
import { parsePinnedFlakeRef, type Baseline, type Config } from '../config/index.js';
import { parsePublicKey, type PublicKey } from '../crypto/index.js';
import { ORDER_TYPES } from './schema.js';
import type { VerifyContext } from './verify.js';

/** config.trustedOrderKeys as keys: several at once for rotation; a key removed here stops its orders. */
function trustedKeysFromConfig(config: Pick<Config, 'trustedOrderKeys'>): PublicKey[] {
  return config.trustedOrderKeys.map((k, i) => parsePublicKey(k, `trustedOrderKeys.${i}`));
}

/** config.orderSignaturesRequired, with every key checked against the vocabulary: a misspelt type must not quietly mean 1. */
function signaturesRequiredFromConfig(config: Pick<Config, 'orderSignaturesRequired'>): Readonly<Record<string, number>> {
  for (const type of Object.keys(config.orderSignaturesRequired)) {
    if (!(ORDER_TYPES as readonly string[]).includes(type)) {
      throw new AgentError('config_invalid', `orderSignaturesRequired: "${type}" is not an order type (${ORDER_TYPES.join(', ')})`);
    }
  }
  return config.orderSignaturesRequired;
}

/** config.allowedFlakes, or when empty the repository of the baseline's own flakeRef (nothing without a baseline). */
export function allowedFlakesFor(config: Pick<Config, 'allowedFlakes'>, baseline?: Pick<Baseline, 'patching'>): string[] {
  if (config.allowedFlakes.length > 0) return [...config.allowedFlakes];
  const own = baseline ? parsePinnedFlakeRef(baseline.patching.flakeRef) : null;
  return own?.ok ? [own.value.source] : [];
}

export function verifyContextFromConfig(
  config: Pick<
    Config,
    | 'trustedOrderKeys'
    | 'siteId'
    | 'hostId'
    | 'orderTtl'
    | 'ntpMaxSkewMs'
    | 'maxDeferral'
    | 'orderSignaturesRequired'
    | 'allowedFlakes'
    | 'closureSubstituters'
    | 'closureTrustedPublicKeys'
  >,
  now: number,
  baseline?: Pick<Baseline, 'patching'>,
): VerifyContext {
  return {
    trustedKeys: trustedKeysFromConfig(config),
    siteId: config.siteId,
    hostId: config.hostId,
    orderTtlS: config.orderTtl,
    ntpMaxSkewMs: config.ntpMaxSkewMs,
    maxDeferralS: config.maxDeferral,
    now,
    signaturesRequired: signaturesRequiredFromConfig(config),
    allowedFlakes: allowedFlakesFor(config, baseline),
    closuresAllowed: config.closureSubstituters.length > 0 && config.closureTrustedPublicKeys.length > 0,
  };
}
