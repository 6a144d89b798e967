# The egress allowlist: an nftables `inet` table whose named sets `compliance-agent
# egress-refresh` fills at run time with the addresses of allowedHosts.
#
# Allowed out: loopback, replies (established/related), DNS to the configured resolvers (to any
# resolver when none are configured), NTP to the addresses of the configured time servers only
# (the ntp_v4/ntp_v6 sets, filled by egress-refresh like the allowlist; empty: no NTP at all, an
# open udp/123 to anywhere would be a way out), TCP to the addresses in the sets on `tcpPorts` (443 for
# the MCP, plus the reseller's syslog port and a non-default webhook port when the module
# configures them). Everything else is logged (rate-limited, with `logPrefix`) and dropped.
#
# scope "appliance" (an egress allowlist for the whole appliance): the output hook drops
# every packet the machine sends that is not allowed, whichever process sends it; the link-layer
# traffic an appliance needs to stay on the network (IPv6 neighbour discovery, DHCP) is allowed.
# scope "agent": only packets from sockets of `agentUser` (`meta skuid`) go through the
# allowlist; the rest of the machine is left to its own firewall.
#
# The sets carry `flags timeout` although their elements never expire: the firewall check
# (src/checks/ruleset.ts) treats elements of such sets as run-time state, so a DNS change does
# not read as firewall drift.
#
# Pure: builtins only, evaluated by CI with `nix-instantiate --eval` and by the NixOS module.
let
  inherit (builtins)
    concatStringsSep
    elem
    filter
    isList
    isString
    length
    map
    match
    throw
    ;

  tableName = "compliance_agent";
  sets = {
    v4 = "allowed_v4";
    v6 = "allowed_v6";
    ntpV4 = "ntp_v4";
    ntpV6 = "ntp_v6";
  };

  ipv4Regex = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}";
  # Hex groups and colons (with at most one `::`, checked by nft itself when it loads the table).
  ipv6Regex = "[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*";
  # Either, for types.strMatching.
  addressRegex = "${ipv4Regex}|${ipv6Regex}";
  isIPv4 = s: match ipv4Regex s != null;
  isIPv6 = s: match ipv6Regex s != null;

  check =
    cond: msg: value:
    if cond then value else throw "ruleset.nix: ${msg}";

  lines = ls: concatStringsSep "\n" (filter (l: l != null) ls);
  indent = prefix: text: concatStringsSep "\n" (map (l: if l == "" then l else prefix + l) (splitLines text));
  splitLines = text: filter isString (builtins.split "\n" text);

  addressSet =
    name: type: comment: elements:
    lines [
      "set ${name} {"
      "  type ${type}"
      (if comment == null then null else "  flags timeout")
      (if elements == [ ] then null else "  elements = { ${concatStringsSep ", " elements} }")
      (if comment == null then null else "  comment \"${comment}\"")
      "}"
    ];

  renderTableBody =
    {
      scope ? "appliance",
      agentUser ? "compliance-agent",
      resolvers ? [ ],
      tcpPorts ? [ 443 ],
      logPrefix ? "compliance-agent egress drop: ",
    }:
    let
      scopeChecked = check (elem scope [
        "appliance"
        "agent"
      ]) "scope must be \"appliance\" or \"agent\", not \"${toString scope}\"" scope;
      resolversChecked = check (isList resolvers) "resolvers must be a list of IP addresses" (
        map (
          r: check (isString r && (isIPv4 r || isIPv6 r)) "resolver \"${toString r}\" is not an IPv4 or IPv6 address" r
        ) resolvers
      );
      v4Resolvers = filter isIPv4 resolversChecked;
      v6Resolvers = filter (r: !(isIPv4 r)) resolversChecked;
      user = check (
        isString agentUser && match "[a-z_][a-z0-9_-]*" agentUser != null
      ) "agentUser must be a user name" agentUser;
      prefix = check (
        isString logPrefix && match "[A-Za-z0-9 _:.-]{1,100}" logPrefix != null
      ) "logPrefix must be 1-100 letters, digits, spaces or _:.-" logPrefix;

      portsChecked = check (isList tcpPorts && tcpPorts != [ ]) "tcpPorts must be a non-empty list of ports" (
        map (
          p: check (builtins.isInt p && p >= 1 && p <= 65535) "tcp port \"${toString p}\" is not an integer from 1 to 65535" p
        ) tcpPorts
      );
      dport =
        if length portsChecked == 1 then
          toString (builtins.head portsChecked)
        else
          "{ ${concatStringsSep ", " (map toString portsChecked)} }";

      dns =
        if length resolversChecked == 0 then
          [ "meta l4proto { tcp, udp } th dport 53 accept comment \"DNS to any resolver (none configured)\"" ]
        else
          [
            "ip daddr @resolvers_v4 meta l4proto { tcp, udp } th dport 53 accept comment \"DNS\""
            "ip6 daddr @resolvers_v6 meta l4proto { tcp, udp } th dport 53 accept comment \"DNS\""
          ];

      egressChain = lines (
        [
          "chain egress {"
          "  oifname \"lo\" accept"
          "  ct state established,related accept"
        ]
        ++ map (r: "  " + r) dns
        ++ [
          "  ip daddr @${sets.ntpV4} udp dport 123 accept comment \"NTP to timeServers\""
          "  ip6 daddr @${sets.ntpV6} udp dport 123 accept comment \"NTP to timeServers\""
          "  ip daddr @${sets.v4} tcp dport ${dport} accept comment \"allowedHosts\""
          "  ip6 daddr @${sets.v6} tcp dport ${dport} accept comment \"allowedHosts\""
          "  limit rate 10/second burst 20 packets log prefix \"${prefix}\" level warn"
          "  counter drop"
          "}"
        ]
      );

      outputChain =
        if scopeChecked == "appliance" then
          lines [
            "chain output {"
            "  type filter hook output priority filter; policy drop;"
            "  icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report } accept comment \"IPv6 neighbour discovery\""
            "  udp sport 68 udp dport 67 accept comment \"DHCPv4\""
            "  udp sport 546 udp dport 547 accept comment \"DHCPv6\""
            "  jump egress"
            "}"
          ]
        else
          lines [
            "chain output {"
            "  type filter hook output priority filter; policy accept;"
            "  meta skuid \"${user}\" jump egress"
            "}"
          ];
    in
    lines [
      (addressSet sets.v4 "ipv4_addr" "filled by compliance-agent egress-refresh" [ ])
      (addressSet sets.v6 "ipv6_addr" "filled by compliance-agent egress-refresh" [ ])
      (addressSet sets.ntpV4 "ipv4_addr" "timeServers, filled by compliance-agent egress-refresh" [ ])
      (addressSet sets.ntpV6 "ipv6_addr" "timeServers, filled by compliance-agent egress-refresh" [ ])
      (addressSet "resolvers_v4" "ipv4_addr" null v4Resolvers)
      (addressSet "resolvers_v6" "ipv6_addr" null v6Resolvers)
      egressChain
      outputChain
    ];

  # The TCP ports allowedHosts are reachable on: 443 for the MCP, and in reseller mode the port of
  # syslogTarget and an explicit port of rmmWebhookUrl (both hosts must be in allowedHosts).
  egressTcpPorts =
    {
      deploymentMode ? "reseller",
      syslogTarget ? null,
      rmmWebhookUrl ? null,
      ...
    }:
    let
      reseller = deploymentMode == "reseller";
      syslogPort =
        if reseller && syslogTarget != null then match "(tcp|tls)://[^/:]+:([0-9]+)" syslogTarget else null;
      webhookPort =
        if reseller && rmmWebhookUrl != null then match "https://[^/:?#]+:([0-9]+)([/?#].*)?" rmmWebhookUrl else null;
      ports =
        [ 443 ]
        ++ (if syslogPort == null then [ ] else [ (builtins.fromJSON (builtins.elemAt syslogPort 1)) ])
        ++ (if webhookPort == null then [ ] else [ (builtins.fromJSON (builtins.head webhookPort)) ]);
    in
    builtins.foldl' (acc: p: if elem p acc then acc else acc ++ [ p ]) [ ] ports;

  # For networking.nftables.preCheckRuleset: nixpkgs runs `nft --check` on the ruleset in the
  # build sandbox, which has no such user, and nft resolves `skuid` names while parsing.
  preCheckRuleset = agentUser: ''
    sed -i 's/skuid "${agentUser}"/skuid "nobody"/' ruleset.conf
  '';

  # A file `nft -f` loads as one transaction: creates the table if missing, deletes it, and
  # declares it anew, as NixOS's nftables service does on every start and reload (which is why
  # the sets come back empty and egress-refresh must fill them again).
  renderTable =
    args:
    lines [
      "table inet ${tableName}"
      "delete table inet ${tableName}"
      "table inet ${tableName} {"
      (indent "  " (renderTableBody args))
      "}"
    ]
    + "\n";
in
{
  inherit
    tableName
    sets
    egressTcpPorts
    renderTableBody
    renderTable
    preCheckRuleset
    isIPv4
    isIPv6
    addressRegex
    ;
}
