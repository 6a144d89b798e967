import type { Addresses } from './resolve.js';
import type { EgressTable } from './table.js';

/**
 * One `nft -f -` batch that replaces the elements of the allowlist sets and the NTP sets. nft applies a batch as a single
 * netlink transaction: a packet sees either the old elements or the new ones, never an empty set
 * in between, and a batch that fails anywhere changes nothing.
 */
export function replaceSetsScript(table: EgressTable, addresses: Addresses, ntp: Addresses = { v4: [], v6: [] }): string {
  const lines: string[] = [];
  const replace = (set: string, elements: readonly string[]): void => {
    lines.push(`flush set ${table.family} ${table.name} ${set}`);
    if (elements.length > 0) lines.push(`add element ${table.family} ${table.name} ${set} { ${elements.join(', ')} }`);
  };
  replace(table.setV4, addresses.v4);
  replace(table.setV6, addresses.v6);
  replace(table.ntpV4, ntp.v4);
  replace(table.ntpV6, ntp.v6);
  return lines.join('\n') + '\n';
}
