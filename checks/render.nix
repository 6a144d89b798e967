# The pure Nix helpers, evaluated without nixpkgs, with chosen inputs:
#
#   nix-instantiate --eval --strict --json checks/render.nix \
#     --argstr rulesetArgs '{"scope":"agent","resolvers":["10.0.0.53"]}' \
#     [--argstr configArgs '{...module option values...}']
#
# (nix-instantiate calls a file's function only when given an --arg; checks/pure-helpers.nix is
# the same with the sample inputs, for a plain `nix-instantiate --eval --strict --json`.)
#
# Evaluating it runs the self-checks below (a failing one aborts with its message) and returns
# what the tests feed to real tools: the ruleset for nft, the agent unit for
# `systemd-analyze security --offline`, config.json for the agent's own ConfigSchema.
{
  rulesetArgs ? "{}",
  configArgs ? null,
}:
let
  inherit (builtins)
    all
    attrValues
    elem
    filter
    fromJSON
    isString
    split
    substring
    stringLength
    ;

  ruleset = import ../modules/lib/ruleset.nix;
  hardening = import ../modules/lib/hardening.nix;
  unit = import ../modules/lib/unit.nix;
  services = import ../modules/lib/services.nix;
  agentConfig = import ../modules/lib/config.nix;
  egress = import ../modules/lib/egress.nix;
  snapshots = import ../modules/lib/snapshots.nix;
  rules = import ../modules/lib/config-rules.nix;

  sampleOptions = agentConfig.defaults // {
    siteId = "clinic-001";
    hostId = "appliance-1";
    resellerId = "msp-alpha";
    mcpUrl = "https://mcp.example.com";
    allowedHosts = [ "mcp.example.com" ];
    baselinePath = "/nix/store/00000000000000000000000000000000-compliance-agent-baseline.json";
    caFile = "/etc/compliance-agent/mcp-ca.pem";
    clientCertFile = "/run/secrets/compliance-agent/client.pem";
    clientKeyFile = "/run/secrets/compliance-agent/client.key";
    signingKeyFile = "/run/secrets/compliance-agent/evidence.key";
    trustedOrderKeys = [ "msp-2026:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" ];
  };
  given = if configArgs == null then sampleOptions else fromJSON configArgs;
  egressDefaults = {
    agentAddressAllow = [ ];
  };
  options = given // {
    egress = egressDefaults // given.egress or { };
  };
  resolvers = options.egress.resolvers or [ ];
  config = agentConfig.render options;
  loadCredentials = agentConfig.loadCredentials options;
  healNixAccess = agentConfig.healNixAccess (options.nixAccessTokensFile or null);

  # Where the units find the agent and its config on the appliance.
  paths = {
    exe = "/run/current-system/sw/bin/compliance-agent";
    configFile = "/etc/compliance-agent/config.json";
  };

  agentUnitWith =
    ipAddressAllow:
    unit.renderUnit {
      Unit = {
        Description = "compliance-agent: drift checks, signed evidence, signed orders from the MCP";
        Wants = "network-online.target compliance-agent-egress.service";
        After = "network-online.target nftables.service compliance-agent-egress.service";
      };
      Service = services.agent (
        paths
        // {
          shell = "/bin/sh";
          inherit loadCredentials ipAddressAllow;
        }
      );
      Install.WantedBy = "multi-user.target";
    };
  agentUnit = agentUnitWith [ ];
  # With egress.agentAddressAllow set: the known MCP address plus a resolver.
  agentUnitAddressAllow = agentUnitWith [
    "203.0.113.10"
    "10.0.0.53"
  ];

  egressUnit = unit.renderUnit {
    Unit.Description = "compliance-agent: refresh the nftables egress allowlist from DNS";
    Service = services.egressRefresh paths;
  };

  # The healer's units and tree, as the module installs them.
  heal = {
    service = unit.renderUnit {
      Unit = services.healUnit // {
        Description = "compliance-agent healer";
      };
      Service = services.heal {
        exe = "/run/current-system/sw/bin/compliance-agent";
        configFile = "/etc/compliance-agent/config.json";
      };
    };
    path = unit.renderUnit {
      Unit.Description = "compliance-agent: start the healer when the agent drops a heal request";
      Path = services.healPath;
      Install.WantedBy = "paths.target";
    };
    timer = unit.renderUnit {
      Unit.Description = "compliance-agent: run the healer when the maintenance window opens";
      Timer = services.healTimer options.maintenanceWindow;
      Install.WantedBy = "timers.target";
    };
    tmpfiles = agentConfig.healTmpfilesRules;
  };

  # The unit that stays active after nftables starts and refills the sets on its reloads.
  egressReloadUnit = unit.renderUnit {
    Unit = {
      Description = "compliance-agent: fill the nftables egress allowlist from DNS";
      PartOf = "nftables.service";
      ReloadPropagatedFrom = "nftables.service";
    };
    Service = services.egressRefresh (paths // { remainAfterExit = true; });
  };

  # The root disk snapshot unit, with the script rendered for tools on PATH (CI runs it).
  diskScript = snapshots.diskScript {
    lsblk = "lsblk";
    cryptsetup = "cryptsetup";
    jq = "jq";
    mv = "mv";
  };
  diskUnit = unit.renderUnit {
    Unit.Description = "compliance-agent: snapshot block devices and LUKS status for the encryption check";
    Service = services.diskSnapshot { script = "/nix/store/00000000000000000000000000000000-compliance-agent-disk-snapshot"; };
  };

  lines = text: filter isString (split "\n" text);
  hasPrefix = p: s: substring 0 (stringLength p) s == p;

  expect =
    cond: msg:
    if cond then true else throw "checks/pure-helpers.nix: ${msg}";

  selfChecks = [
    (expect (hardening.agent.CapabilityBoundingSet == "" && hardening.agent.AmbientCapabilities == "")
      "the agent must hold no capability"
    )
    (expect (hardening.agent.SocketBindDeny == "any") "the agent must not be able to bind a socket")
    (expect (hardening.agent.ProtectSystem == "strict" && hardening.agent.NoNewPrivileges)
      "the agent must run with ProtectSystem=strict and NoNewPrivileges"
    )
    (expect (elem "CapabilityBoundingSet=" (lines agentUnit))
      "the rendered agent unit must clear CapabilityBoundingSet"
    )
    (expect (elem "User=compliance-agent" (lines agentUnit)) "the agent must run as its own user")
    (expect (hardening.egressRefresh.CapabilityBoundingSet == "CAP_NET_ADMIN")
      "egress-refresh must hold CAP_NET_ADMIN and nothing else"
    )
    (expect (all (c: c == null || hasPrefix agentConfig.credentialsDir c || (agentConfig.enrolling options && hasPrefix "${agentConfig.identityDir}/" c)) (
      map (o: config.${o}) (attrValues (builtins.mapAttrs (o: _: o) agentConfig.credentialNames))
    )) "every file option in config.json must point into the unit's credentials directory (or, when enrolling, the identity directory)")
    (expect (all (l: !(hasPrefix "/nix/store" (builtins.elemAt (split ":" l) 2))) loadCredentials)
      "a LoadCredential source is a Nix store path"
    )
    (expect (elem "  counter drop" (lines (ruleset.renderTableBody { })))
      "the egress chain must end in a drop"
    )
    (expect (all (l: !(hasPrefix "  meta skuid" l)) (lines (ruleset.renderTableBody { })))
      "the appliance scope must not match on the agent's uid"
    )
    (expect (ruleset.egressTcpPorts { syslogTarget = "tls://siem.example:6514"; rmmWebhookUrl = "https://rmm.example:8443/h"; } == [ 443 6514 8443 ])
      "reseller mode must open the syslog port and an explicit webhook port to allowedHosts"
    )
    (expect (ruleset.egressTcpPorts { deploymentMode = "direct"; syslogTarget = "tcp://siem.example:514"; } == [ 443 ])
      "direct mode sends no syslog, so it opens no syslog port"
    )
    (expect (!(services.healPath ? DirectoryNotEmpty) && !(services.healPath ? PathExistsGlob))
      "the healer's path unit must be edge-triggered: root never empties the drop box"
    )
    (expect (elem "d ${agentConfig.healDir}/requests 1770 root ${agentConfig.healUser} - -" agentConfig.healTmpfilesRules)
      "the drop box must be root's, sticky, for the agent's group only"
    )
    (expect (config.healDir == agentConfig.healDir && config.healDir != config.stateDir)
      "config.json must name the healer's tree, apart from the agent's state directory"
    )
    (expect (elem "  meta skuid \"compliance-agent\" jump egress" (
      lines (ruleset.renderTableBody { scope = "agent"; })
    )) "the agent scope must send the agent's packets through the allowlist")
  ];
in
builtins.deepSeq selfChecks {
  ruleset = {
    appliance = ruleset.renderTable { };
    agent = ruleset.renderTable { scope = "agent"; };
    requested = ruleset.renderTable (fromJSON rulesetArgs);
  };
  names = {
    inherit (ruleset) tableName sets;
  };
  inherit
    agentUnit
    agentUnitAddressAllow
    egressUnit
    heal
    egressReloadUnit
    diskScript
    diskUnit
    config
    loadCredentials
    healNixAccess
    ;
  agentAddressAllow = egress.agentAddressAllow { cfg = options; inherit resolvers; };
  # The module's assertions between options (modules/lib/config-rules.nix) for these options.
  configRules = rules.assertions options;
  agentAddressAllowAssertion = egress.agentAddressAllowAssertion { cfg = options; inherit resolvers; };
  inherit (hardening) exposureTarget;
  inherit (agentConfig) defaults credentialsDir diskSnapshotFile;
}
