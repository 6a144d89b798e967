/**
 * Names in the nftables table the NixOS module declares (modules/lib/ruleset.nix). The two must
 * agree; test/nix checks that they do.
 */
export const EGRESS_TABLE = {
  family: 'inet',
  name: 'compliance_agent',
  setV4: 'allowed_v4',
  setV6: 'allowed_v6',
} as const;

export type EgressTable = { readonly family: string; readonly name: string; readonly setV4: string; readonly setV6: string };
