export { refreshEgress, type RefreshOptions, type RefreshReport, type HostReport } from './refresh.js';
export { systemResolver, splitAddresses, type Resolver, type ResolveOutcome, type Addresses } from './resolve.js';
export { replaceSetsScript } from './nft-script.js';
export { readLastGood, type LastGood, type CachedHost } from './cache.js';
export { EGRESS_TABLE, type EgressTable } from './table.js';
