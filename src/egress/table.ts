/**
 * Names in the nftables table the NixOS module declares (modules/lib/ruleset.nix). The two must
 * agree; test/nix checks that they do.
 */
export const EGRESS_TABLE = {
  family: 'inet',
  name: 'compliance_agent',
  setV4: 'allowed_v4',
  setV6: 'allowed_v6',
  /** The time servers' addresses: the only destinations of udp/123. */
  ntpV4: 'ntp_v4',
  ntpV6: 'ntp_v6',
} as const;

export type EgressTable = {
  readonly family: string;
  readonly name: string;
  readonly setV4: string;
  readonly setV6: string;
  readonly ntpV4: string;
  readonly ntpV6: string;
};
