import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { errnoCode } from '../common/index.js';

export interface Addresses {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

export type ResolveOutcome = { ok: true; addresses: Addresses } | { ok: false; reason: string };

/** Resolves one host name to its A and AAAA addresses. Never throws. */
export type Resolver = (host: string) => Promise<ResolveOutcome>;

/** Sorted, deduplicated, split by family; anything that is not an IP address is dropped. */
export function splitAddresses(addresses: readonly string[]): Addresses {
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const a of addresses) {
    const family = isIP(a);
    if (family === 4) v4.add(a);
    else if (family === 6) v6.add(a.toLowerCase());
  }
  return { v4: [...v4].sort(), v6: [...v6].sort() };
}

/**
 * The system resolver (getaddrinfo: /etc/hosts, nsswitch, the configured DNS servers), the same
 * one undici uses when the agent connects, so the allowlist holds the addresses the agent will
 * dial. getaddrinfo cannot be cancelled: past `timeoutMs` the answer is ignored and the host
 * counts as failed.
 */
export function systemResolver(timeoutMs = 10_000): Resolver {
  return async (host) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ResolveOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
      timer.unref();
    });
    const answer = lookup(host, { all: true, family: 0 }).then(
      (list): ResolveOutcome => {
        const addresses = splitAddresses(list.map((a) => a.address));
        return addresses.v4.length + addresses.v6.length > 0 ? { ok: true, addresses } : { ok: false, reason: 'no A or AAAA record' };
      },
      (e: unknown): ResolveOutcome => ({ ok: false, reason: errnoCode(e) ?? (e as Error).message }),
    );
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
}
