# Decisions about the agent's egress that the NixOS module turns into assertions and unit
# settings, kept here so CI can evaluate them without nixpkgs.
#
# Pure: builtins only.
let
  inherit (builtins) filter;
  agentConfig = import ./config.nix;
  ruleset = import ./ruleset.nix;
  isAddress = s: ruleset.isIPv4 s || ruleset.isIPv6 s;
  orNull = f: v: if v == null then null else f v;
in
rec {
  # The allowlist is a table in the host's nftables ruleset. Turning nftables on switches the
  # whole host's firewall backend (and blacklists ip_tables), so the module asks for it instead
  # of doing it.
  nftablesAssertion =
    { egressEnable, nftablesEnable }:
    {
      assertion = !egressEnable || nftablesEnable;
      message = ''
        services.compliance-agent.egress.enable: the egress allowlist is an nftables table, but networking.nftables.enable is false.
        Set networking.nftables.enable = true (this switches the whole host's firewall to nftables: networking.firewall keeps working, but rules in networking.firewall.extraCommands must move to networking.firewall.extraInputRules or networking.nftables.tables),
        or set services.compliance-agent.egress.enable = false to run without the allowlist.'';
    };

  # The hosts, besides the MCP, that the agent itself sends to: the reseller's sinks.
  sinkHosts =
    cfg:
    if cfg.deploymentMode != "reseller" then
      [ ]
    else
      filter (h: h != null) [
        (orNull agentConfig.urlHost cfg.rmmWebhookUrl)
        (orNull agentConfig.syslogHost cfg.syslogTarget)
      ];

  # IPAddressAllow= of the agent unit when egress.agentAddressAllow is set: those addresses, the
  # resolvers, and every destination already given as an address (MCP, sinks). `unreachable`:
  # destinations given by name, which a per-unit address filter would block without a word.
  agentAddressAllow =
    { cfg, resolvers }:
    let
      destinations = filter (h: h != null) [ (agentConfig.urlHost cfg.mcpUrl) ] ++ sinkHosts cfg;
      sinks = sinkHosts cfg;
    in
    if cfg.egress.agentAddressAllow == [ ] then
      {
        addresses = [ ];
        unreachable = [ ];
      }
    else
      {
        addresses = cfg.egress.agentAddressAllow ++ filter isAddress destinations ++ resolvers;
        unreachable = filter (h: !isAddress h) sinks;
      };

  agentAddressAllowAssertion =
    { cfg, resolvers }:
    let
      unreachable = (agentAddressAllow { inherit cfg resolvers; }).unreachable;
    in
    {
      assertion = unreachable == [ ];
      message = "services.compliance-agent.egress.agentAddressAllow: in reseller mode the agent also sends to ${builtins.concatStringsSep " and " unreachable}, given by name; the unit's IPAddressAllow= would block them without a word. Give rmmWebhookUrl and syslogTarget by IP address, or leave egress.agentAddressAllow empty (the nftables allowlist still holds the agent to allowedHosts).";
    };
}
