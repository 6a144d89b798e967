{
  config,
  lib,
  options,
  pkgs,
  ...
}:
let
  inherit (lib)
    getExe
    literalExpression
    mkDefault
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    optional
    optionalAttrs
    optionals
    types
    ;

  cfg = config.services.compliance-agent;
  opt = options.services.compliance-agent;

  agentConfig = import ./lib/config.nix;
  services = import ./lib/services.nix;
  ruleset = import ./lib/ruleset.nix;
  egress = import ./lib/egress.nix;
  configRules = import ./lib/config-rules.nix;
  snapshots = import ./lib/snapshots.nix;
  inherit (agentConfig) defaults stateDir healDir;

  json = pkgs.formats.json { };

  baselinePath =
    if opt.baselinePath.isDefined then
      cfg.baselinePath
    else
      throw "services.compliance-agent: set baseline or baselinePath";

  configFile = json.generate "compliance-agent-config.json" (
    agentConfig.render (
      cfg
      // {
        inherit baselinePath;
        inherit (cfg.egress) timeServers;
      }
    )
  );

  baselineFlakeRef = if cfg.baseline == null then null else cfg.baseline.patching.flakeRef or null;
  substituterHost = u: agentConfig.urlHost u;
  healNixAccess = agentConfig.healNixAccess cfg.nixAccessTokensFile;

  exe = getExe cfg.package;
  resolvers =
    if cfg.egress.resolvers == null then config.networking.nameservers else cfg.egress.resolvers;

  # What the checks run: systemctl (systemd is always on a service's PATH), lsblk, cryptsetup,
  # chronyc and nixos-version (the last two from the system profile). The firewall check reads
  # the ruleset snapshot instead of running nft.
  checkTools = [
    pkgs.util-linux
    pkgs.cryptsetup
    "/run/current-system/sw"
  ];

  enrolling = agentConfig.enrolling cfg;
  identityOptions = builtins.attrNames agentConfig.identityFiles;

  reseller = cfg.deploymentMode == "reseller";
  addressAllow = egress.agentAddressAllow { inherit cfg resolvers; };

  snapshotTimer = what: {
    description = "compliance-agent: keep the ${what} snapshot fresh";
    wantedBy = [ "timers.target" ];
    timerConfig = {
      OnActiveSec = "30s";
      OnUnitActiveSec = "1min";
      AccuracySec = "5s";
    };
  };

  # Public files (a CA, a certificate): a path literal is fine, it is copied to the store.
  fileOption =
    description:
    mkOption {
      type = types.path;
      description = ''
        ${description}

        Handed to the agent with systemd's `LoadCredential=`.
      '';
    };

  # Private keys: an absolute path outside the store, given as a string (a path literal would
  # copy the key into the world-readable store, which the type refuses).
  secretOption =
    description:
    mkOption {
      type = types.externalPath;
      example = "/run/secrets/compliance-agent/key";
      description = ''
        ${description}

        Handed to the agent with systemd's `LoadCredential=`, so it may be a root-only file
        such as a sops-nix or agenix secret (`/run/secrets/...`).
      '';
    };
  # Not needed when the appliance enrolls: then it makes its own keys and gets its certificate.
  identityFileOption =
    description:
    (fileOption description)
    // {
      type = types.nullOr types.path;
      default = null;
    };
  identitySecretOption =
    description:
    (secretOption description)
    // {
      type = types.nullOr types.externalPath;
      default = null;
    };
in
{
  options.services.compliance-agent = {
    enable = mkEnableOption "the compliance agent: drift checks, signed evidence and self-healing driven by signed orders from the MSP control plane (MCP)";

    # `pkgs.compliance-agent` comes from this flake's overlays.default; the flake's
    # nixosModules.default sets this flake's package instead.
    package = mkPackageOption pkgs "compliance-agent" { };

    # The agent's options: names and defaults as config.json has them (docs/config.md).

    mcpUrl = mkOption {
      type = types.strMatching agentConfig.httpsUrlRegex;
      default = defaults.mcpUrl;
      description = "Base URL of the MCP (MSP control plane). Must be `https://`; its host must be in `allowedHosts`.";
    };

    allowedHosts = mkOption {
      type = types.listOf types.str;
      default = defaults.allowedHosts;
      example = [
        "mcp.example.com"
        "cache.nixos.org"
      ];
      description = ''
        Egress allowlist: the only hosts reachable over HTTPS (443). Resolved by
        `compliance-agent egress-refresh` into the nftables sets. With `egress.scope =
        "appliance"` this covers the whole machine, so add the hosts `nixos-rebuild` fetches from
        (binary cache, flake source) and any backup target.
      '';
    };

    siteId = mkOption {
      type = types.strMatching agentConfig.identRegex;
      example = "clinic-001";
      description = "Unique site identifier; orders for another site are rejected.";
    };

    hostId = mkOption {
      type = types.strMatching agentConfig.identRegex;
      default = config.networking.hostName;
      defaultText = literalExpression "config.networking.hostName";
      description = "Host identifier within the site (1-128 letters, digits, dot, dash or underscore, starting with a letter or digit; networking.hostName, the default, must be one too); orders for another host are rejected.";
    };

    deploymentMode = mkOption {
      type = types.enum [
        "reseller"
        "direct"
      ];
      default = defaults.deploymentMode;
      description = "`reseller`: evidence also goes to the reseller's RMM webhook and syslog. `direct`: only to the MCP.";
    };

    resellerId = mkOption {
      type = types.nullOr types.str;
      default = defaults.resellerId;
      description = "MSP reseller identifier, recorded in every evidence bundle. Required in reseller mode.";
    };

    baselinePath = mkOption {
      type = types.path;
      defaultText = literalExpression ''the rendered `baseline` when that is set'';
      description = "Path of baseline.json, the desired state the drift checks compare against. Set this or `baseline`.";
    };

    policyVersion = mkOption {
      type = types.str;
      default = defaults.policyVersion;
      description = "Policy version recorded in evidence.";
    };

    clientCertFile = identityFileOption "mTLS client certificate (PEM) the agent presents to the MCP. Not set with `enrollment.tokenFile`.";
    clientKeyFile = identitySecretOption "Private key (PEM) of the mTLS client certificate. Not set with `enrollment.tokenFile`.";
    signingKeyFile = identitySecretOption "Ed25519 evidence-signing key: PKCS#8 PEM or `name:base64` as `compliance-agent keygen` and `nix-store --generate-binary-cache-key` write it. Not set with `enrollment.tokenFile`.";

    enrollment = {
      tokenFile = mkOption {
        type = types.nullOr types.externalPath;
        default = null;
        example = "/run/secrets/compliance-agent-enrollment-token";
        description = ''
          One-time site token from the MSP. When set, `compliance-agent-enroll.service` runs
          before the agent while no certificate exists: it makes the evidence key and the mTLS
          key on this machine, in `/var/lib/compliance-agent/identity/` (owner
          `compliance-agent`, directory 0700, keys 0600), sends their public halves with the
          token to `POST {mcpUrl}/enroll` (CA pinned from `caFile`) and stores the certificate.
          The token file is deleted afterwards. Then `clientCertFile`, `clientKeyFile` and
          `signingKeyFile` are not set: the agent renews its certificate itself.
          Give it as a string: a Nix path literal would be copied into the world-readable store,
          which the type refuses.
        '';
      };

      renewBeforeDays = mkOption {
        type = types.ints.positive;
        default = defaults.certRenewBeforeDays;
        description = "Days before its expiry the agent renews its mTLS certificate (or at half its lifetime, if that comes first).";
      };
    };

    webhookSecretFile = mkOption {
      type = types.nullOr types.externalPath;
      default = defaults.webhookSecretFile;
      description = "File holding the Standard Webhooks secret (`whsec_...`) that signs RMM webhook calls. Passed with `LoadCredential=`.";
    };

    pollInterval = mkOption {
      type = types.ints.positive;
      default = defaults.pollInterval;
      description = "Seconds between polls of the MCP.";
    };

    orderTtl = mkOption {
      type = types.ints.positive;
      default = defaults.orderTtl;
      description = "Longest validity, in seconds, an order may carry (`expires_at - issued_at`).";
    };

    maintenanceWindow = mkOption {
      type = types.strMatching agentConfig.windowRegex;
      default = defaults.maintenanceWindow;
      example = "22:00-01:00";
      description = "UTC window `HH:MM-HH:MM` (may cross midnight) for disruptive heals such as `nixos-rebuild switch`.";
    };

    maxDeferral = mkOption {
      type = types.ints.positive;
      default = defaults.maxDeferral;
      description = ''
        Longest wait, in seconds after `issued_at`, an order may ask for with `execute_by`: how
        long a disruptive heal the healer has recorded may wait for the maintenance window. An
        order without `execute_by` never runs after its `expires_at`.
      '';
    };

    allowDisruptiveOutsideWindow = mkOption {
      type = types.bool;
      default = defaults.allowDisruptiveOutsideWindow;
      description = "Act on disruptive heals outside the maintenance window instead of deferring them.";
    };

    evidenceRetention = mkOption {
      type = types.ints.positive;
      default = defaults.evidenceRetention;
      description = "Evidence bundles kept locally by the daily prune.";
    };

    pruneRetentionDays = mkOption {
      type = types.ints.unsigned;
      default = defaults.pruneRetentionDays;
      description = "The prune never deletes a bundle younger than this many days, nor one the MCP has not acknowledged.";
    };

    ntpMaxSkewMs = mkOption {
      type = types.ints.positive;
      default = defaults.ntpMaxSkewMs;
      description = "Largest tolerated NTP offset in milliseconds; beyond it the clock is insane and disruptive heals wait.";
    };

    rmmWebhookUrl = mkOption {
      type = types.nullOr (types.strMatching agentConfig.httpsUrlRegex);
      default = defaults.rmmWebhookUrl;
      description = "Reseller mode: RMM/PSA webhook (`https://`) receiving a signed summary of each bundle.";
    };

    syslogTarget = mkOption {
      type = types.nullOr (types.strMatching agentConfig.syslogTargetRegex);
      default = defaults.syslogTarget;
      example = "tls://siem.example.net:6514";
      description = "Reseller mode: RFC 5424 syslog receiver, `tcp://host:port` or `tls://host:port`.";
    };

    rebuildHealthCheckTimeout = mkOption {
      type = types.ints.positive;
      default = defaults.rebuildHealthCheckTimeout;
      description = "Seconds the health check after a switch may take before the healer rolls back.";
    };

    logLevel = mkOption {
      type = types.enum [
        "DEBUG"
        "INFO"
        "WARNING"
        "ERROR"
      ];
      default = defaults.logLevel;
      description = "Log level of the agent's JSON logs (journald).";
    };

    # Module-level settings.

    caFile = fileOption "CA certificate (PEM) that signs the MCP's server certificate; the only CA the agent trusts for the MCP.";

    trustedOrderKeys = mkOption {
      type = types.nonEmptyListOf (types.strMatching agentConfig.trustedKeyRegex);
      example = [ "msp-2026:Bx9Ag1G2ZXq0xYx7nR2c1s7cWJ6m2eWb0v1mQd0b9nI=" ];
      description = ''
        Ed25519 public keys (`name:base64`, the Nix `trusted-public-keys` form) whose signatures
        make an order valid. Several at once allow key rotation; removing one stops its orders.
      '';
    };

    allowedFlakes = mkOption {
      type = types.listOf types.str;
      default = [ ];
      defaultText = literalExpression ''[ ] (the repository of baseline.patching.flakeRef)'';
      example = [ "github:msp-alpha/sites" ];
      description = ''
        Flake URL prefixes (`github:owner[/repo]`, `gitlab:`, `sourcehut:`,
        `git+https://host[/path]`) an `apply_baseline` order may name, matched on a path
        boundary. Empty: only the repository of the baseline's own flakeRef. Every reference
        must also pin `rev=<40 hex>` equal to the signed revision; local, tarball and
        user-info references are always refused.
      '';
    };

    orderSignaturesRequired = mkOption {
      type = types.attrsOf (types.ints.between 1 8);
      default = { };
      example = {
        apply_baseline = 2;
        apply_closure = 2;
        rollback = 2;
      };
      description = ''
        Distinct keys of `trustedOrderKeys` that must sign each order type (default 1). With 2
        for the disruptive types, one stolen order key no longer switches the appliance. A key
        listed twice, or two signatures by one key, count once. Co-sign with
        `compliance-agent order sign --key KEY --cosign ENVELOPE.json`.
      '';
    };

    closureSubstituters = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "https://cache.msp-alpha.example" ];
      description = ''
        Binary caches (`https://`, whose host must be in `allowedHosts`, or `file://`) from which
        the healer substitutes the system closure an `apply_closure` order names. The healer
        passes them to `nix-store --realise` with `require-sigs = true` and
        `closureTrustedPublicKeys` only: it never evaluates Nix code for such an order.
      '';
    };

    closureTrustedPublicKeys = mkOption {
      type = types.listOf (types.strMatching agentConfig.trustedKeyRegex);
      default = [ ];
      example = [ "cache.msp-alpha.example-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=" ];
      description = "Public keys (`name:base64`, as `nix key convert-secret-to-public` prints them) one of which must sign each path of an `apply_closure` closure.";
    };

    nixAccessTokensFile = mkOption {
      type = types.nullOr types.externalPath;
      default = null;
      example = "/run/secrets/nix-access-tokens";
      description = ''
        A root-only file in nix.conf syntax (`access-tokens = github.com=ghp_...`) for private
        flake repositories. Handed to the healer alone as a systemd credential and read by Nix
        through `NIX_USER_CONF_FILES`; never in a URL, the rendered config, the journal or the
        evidence. Give it as a string so it is not copied into the store.
      '';
    };

    heartbeatInterval = mkOption {
      type = types.ints.positive;
      default = defaults.heartbeatInterval;
      description = "Seconds after which an unchanged state is reported again as evidence.";
    };

    stableCheckInterval = mkOption {
      type = types.ints.between 0 86400;
      default = defaults.stableCheckInterval;
      description = "Seconds the agent reuses a compliant patching or encryption result while /run/current-system is unchanged (a switch re-checks at once; drift and errors are checked every cycle); 0: every cycle. The healer always checks fresh.";
    };

    timeCheckInterval = mkOption {
      type = types.ints.between 0 86400;
      default = defaults.timeCheckInterval;
      description = "Seconds the agent reuses a compliant time (NTP) result; 0: every cycle.";
    };

    mcpReceiptKeys = mkOption {
      type = types.listOf (types.strMatching agentConfig.trustedKeyRegex);
      default = defaults.mcpReceiptKeys;
      example = [ "mcp-receipts-2026:Bx9Ag1G2ZXq0xYx7nR2c1s7cWJ6m2eWb0v1mQd0b9nI=" ];
      description = ''
        The MCP's Ed25519 receipt keys (`name:base64`, several for rotation). A delivery counts
        only with a receipt one of them signed for that exact bundle, and `prune` deletes only
        bundles with such a receipt. Empty: receipts are bound to the bundle but not
        countersigned, and nothing is ever pruned.
      '';
    };

    controlPlaneMaxAge = mkOption {
      type = types.ints.between 1 2592000;
      default = defaults.controlPlaneMaxAge;
      description = ''
        Seconds without a newer MSP-signed order (the MSP signs a `heartbeat` order more often
        than this) before the agent raises `control_plane_stale`: an MCP that withholds orders.
      '';
    };

    syslogCaFile = mkOption {
      type = types.nullOr types.path;
      default = defaults.syslogCaFile;
      description = "CA (PEM) that signs the certificate of a `tls://` syslogTarget. Passed with `LoadCredential=`. Refused with a `tcp://` target: remove it to mean unencrypted syslog.";
    };

    webhookCaFile = mkOption {
      type = types.nullOr types.path;
      default = defaults.webhookCaFile;
      description = "CA (PEM) that signs the RMM webhook's certificate, then the only CA trusted for it. Unset: the public roots bundled with Node.js. Passed with `LoadCredential=`.";
    };

    baseline = mkOption {
      type = types.nullOr json.type;
      default = null;
      example = literalExpression ''
        {
          version = 1;
          patching = { configurationRevision = "..."; flakeRef = "github:example/site#appliance"; };
          services.required = [ "sshd.service" ];
          backup = { unit = "restic-backups-daily.service"; stampFile = "/var/lib/backup/last-success"; maxAgeHours = 26; };
          firewall.rulesetHash = "sha256:...";
          encryption.requiredMounts = [ "/" ];
        }
      '';
      description = "The baseline (see src/config/schema.ts, BaselineSchema), rendered to baseline.json; `baselinePath` then points at it.";
    };

    egress = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Whether to hold egress to `allowedHosts` with the nftables table `inet compliance_agent`.
          It needs `networking.nftables.enable = true`, which the module asks for instead of
          setting: it switches the whole host's firewall to nftables (and blacklists `ip_tables`),
          and rules in `networking.firewall.extraCommands` must then move to nftables options.
          Turn this off to run the agent without the allowlist.
        '';
      };

      scope = mkOption {
        type = types.enum [
          "appliance"
          "agent"
        ];
        default = "appliance";
        description = ''
          What the egress allowlist filters. `appliance`: everything this machine sends (the
          egress allowlist of a dedicated appliance). `agent`: only the agent's own
          sockets (`meta skuid`), for machines that do other work too.
        '';
      };

      resolvers = mkOption {
        type = types.nullOr (types.listOf (types.strMatching ruleset.addressRegex));
        default = null;
        defaultText = literalExpression "config.networking.nameservers";
        description = "DNS servers (IP addresses) the allowlist lets DNS through to. Empty: DNS to any server is allowed.";
      };

      timeServers = mkOption {
        type = types.listOf types.str;
        default = if config.services.chrony.enable then config.services.chrony.servers else config.networking.timeServers;
        defaultText = literalExpression "if config.services.chrony.enable then config.services.chrony.servers else config.networking.timeServers";
        description = ''
          NTP servers (names or addresses) the allowlist lets `udp/123` through to, resolved by
          `compliance-agent egress-refresh` into their own sets. NTP to any other address is
          dropped: an open port 123 to everywhere is a way out for anything on the machine.
          Servers written into `services.chrony.extraConfig` are not seen: list them here.
        '';
      };

      refreshInterval = mkOption {
        type = types.str;
        default = "5min";
        description = "How often `compliance-agent egress-refresh` resolves allowedHosts again (systemd time span).";
      };

      agentAddressAllow = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "203.0.113.10" ];
        description = ''
          Known MCP addresses or prefixes. When set, the agent unit also gets
          `IPAddressDeny=any` with `IPAddressAllow=` these, loopback, the resolvers and every
          destination given by address (`mcpUrl`, and in reseller mode `rmmWebhookUrl` and
          `syslogTarget`): a per-unit filter independent of nftables. In reseller mode a sink
          given by name is refused with an assertion, since the filter would block it silently.
        '';
      };
    };
  };

  config = mkIf cfg.enable {
    assertions = configRules.assertions cfg ++ [
      {
        assertion = opt.baselinePath.isDefined;
        message = "services.compliance-agent: set baseline (rendered to baseline.json) or baselinePath.";
      }
      {
        assertion = cfg.baseline == null || opt.baselinePath.highestPrio >= (mkDefault null).priority;
        message = "services.compliance-agent: set baseline or baselinePath, not both.";
      }
      # networking.nameservers is not checked by type.
      {
        assertion = builtins.all (r: ruleset.isIPv4 r || ruleset.isIPv6 r) resolvers;
        message = "services.compliance-agent.egress.resolvers: every entry must be an IPv4 or IPv6 address (got ${builtins.toJSON resolvers}).";
      }
      (egress.nftablesAssertion {
        egressEnable = cfg.egress.enable;
        nftablesEnable = config.networking.nftables.enable;
      })
      (egress.agentAddressAllowAssertion { inherit cfg resolvers; })
    ]
    ++ optionals (baselineFlakeRef != null) [
      {
        assertion = agentConfig.pinnedFlakeRef baselineFlakeRef;
        message = "services.compliance-agent.baseline.patching.flakeRef: must pin a commit (git+https:// or github:/gitlab:/sourcehut: with rev=<40 hex> and #name, no user info), so heals build exactly what was reviewed (got \"${baselineFlakeRef}\").";
      }
      {
        assertion = agentConfig.pinnedRev baselineFlakeRef == (cfg.baseline.patching.configurationRevision or null);
        message = "services.compliance-agent.baseline.patching.configurationRevision: must be the rev its flakeRef pins.";
      }
    ]
    ++ map (u: {
      assertion = lib.hasPrefix "file://" u || (substituterHost u != null && builtins.elem (substituterHost u) cfg.allowedHosts);
      message = "services.compliance-agent.closureSubstituters: \"${u}\" must be file:// or an https:// URL whose host is in allowedHosts.";
    }) cfg.closureSubstituters
    ++ [
      {
        assertion = enrolling || builtins.all (o: cfg.${o} != null) identityOptions;
        message = "services.compliance-agent: set enrollment.tokenFile (the appliance enrolls itself), or all of clientCertFile, clientKeyFile and signingKeyFile.";
      }
      {
        assertion = !enrolling || builtins.all (o: cfg.${o} == null) identityOptions;
        message = "services.compliance-agent: with enrollment.tokenFile the appliance makes its own keys; leave clientCertFile, clientKeyFile and signingKeyFile unset.";
      }
    ];

    warnings =
      optional (!reseller && (cfg.rmmWebhookUrl != null || cfg.syslogTarget != null))
        "services.compliance-agent: rmmWebhookUrl and syslogTarget are ignored in direct mode."
      ++ optional (resolvers == [ ])
        "services.compliance-agent: no DNS resolvers are known (networking.nameservers is empty), so the egress allowlist lets DNS through to any server. Set services.compliance-agent.egress.resolvers.";

    services.compliance-agent.baselinePath = mkIf (cfg.baseline != null) (
      mkDefault (json.generate "compliance-agent-baseline.json" cfg.baseline)
    );

    users.users.compliance-agent = {
      isSystemUser = true;
      group = "compliance-agent";
      description = "compliance-agent, the unprivileged network-facing side";
    };
    users.groups.compliance-agent = { };
    users.users.${services.netUser} = {
      isSystemUser = true;
      group = services.netUser;
      description = "compliance-agent egress refresh and ruleset snapshot (CAP_NET_ADMIN only)";
    };
    users.groups.${services.netUser} = { };

    # `compliance-agent status --config /etc/compliance-agent/config.json`, `verify`, `check`.
    environment.systemPackages = [ cfg.package ];
    environment.etc."compliance-agent/config.json".source = configFile;

    networking.nftables = mkIf cfg.egress.enable {
      tables.${ruleset.tableName} = {
        family = "inet";
        content = ruleset.renderTableBody {
          inherit (cfg.egress) scope;
          inherit resolvers;
          tcpPorts = ruleset.egressTcpPorts cfg;
          agentUser = "compliance-agent";
        };
      };
      preCheckRuleset = mkIf (cfg.egress.scope == "agent") (ruleset.preCheckRuleset "compliance-agent");
    };

    systemd.services.compliance-agent = {
      description = "compliance-agent: drift checks, signed evidence, signed orders from the MCP";
      wantedBy = [ "multi-user.target" ];
      # Without egress.enable there is no egress unit, and systemd ignores the Wants=.
      wants = [
        "network-online.target"
        "compliance-agent-egress.service"
        "compliance-agent-ruleset.service"
        "compliance-agent-disks.service"
      ];
      after = [
        "network-online.target"
        "nftables.service"
        "compliance-agent-egress.service"
        "compliance-agent-ruleset.service"
        "compliance-agent-disks.service"
      ];
      path = checkTools;
      serviceConfig = services.agent {
        inherit exe configFile;
        shell = pkgs.runtimeShell;
        loadCredentials = agentConfig.loadCredentials cfg;
        ipAddressAllow = addressAllow.addresses;
      };
    };

    # node_exporter's textfile collector reads the agent's metrics where the agent writes them.
    services.prometheus.exporters.node = mkIf config.services.prometheus.exporters.node.enable {
      enabledCollectors = [ "textfile" ];
      extraFlags = [ "--collector.textfile.directory=/run/${agentConfig.metricsDir}" ];
    };

    systemd.services.compliance-agent-enroll = mkIf enrolling {
      description = "compliance-agent: enroll this appliance with its one-time site token";
      requiredBy = [ "compliance-agent.service" ];
      before = [ "compliance-agent.service" ];
      wants = [
        "network-online.target"
        "compliance-agent-egress.service"
      ];
      after = [
        "network-online.target"
        "nftables.service"
        "compliance-agent-egress.service"
      ];
      # Only while there is no certificate yet; afterwards the agent renews it.
      unitConfig.ConditionPathExists = "!${agentConfig.identityDir}/${agentConfig.identityFiles.clientCertFile}";
      serviceConfig = services.enroll {
        inherit exe configFile;
        loadCredentials = agentConfig.enrollCredentials cfg;
        removeToken = "${pkgs.coreutils}/bin/rm -f -- ${toString cfg.enrollment.tokenFile}";
        ipAddressAllow = optionals (cfg.egress.agentAddressAllow != [ ]) (
          cfg.egress.agentAddressAllow ++ resolvers
        );
      };
    };

    systemd.services.compliance-agent-prune = {
      description = "compliance-agent: prune the local evidence store";
      path = checkTools;
      serviceConfig = services.prune { inherit exe configFile; };
    };

    systemd.timers.compliance-agent-prune = {
      description = "compliance-agent: daily evidence prune";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnCalendar = "daily";
        Persistent = true;
        RandomizedDelaySec = "1h";
      };
    };

    # Every nftables start and reload recreates the table with empty sets. This unit fills them
    # once nftables has started, stays active, and fills them again on every nftables reload
    # (ExecReload, ReloadPropagatedFrom=) and restart (PartOf=); each time it also asks for a
    # fresh snapshot of the new ruleset (`+`: systemctl as root, the one privileged command).
    systemd.services.compliance-agent-egress = mkIf cfg.egress.enable {
      description = "compliance-agent: fill the nftables egress allowlist from DNS";
      wantedBy = [ "nftables.service" ];
      partOf = [ "nftables.service" ];
      wants = [ "network-online.target" ];
      after = [
        "nftables.service"
        "network-online.target"
      ];
      unitConfig.ReloadPropagatedFrom = [ "nftables.service" ];
      path = [ pkgs.nftables ];
      serviceConfig =
        let
          snapshot = "+${config.systemd.package}/bin/systemctl --no-block start compliance-agent-ruleset.service";
          unit = services.egressRefresh {
            inherit exe configFile;
            remainAfterExit = true;
          };
        in
        unit
        // {
          ExecStartPost = snapshot;
          ExecReload = [
            unit.ExecReload
            snapshot
          ];
        };
    };

    # DNS answers change: resolve allowedHosts again on a timer.
    systemd.services.compliance-agent-egress-refresh = mkIf cfg.egress.enable {
      description = "compliance-agent: refresh the nftables egress allowlist from DNS";
      wants = [ "network-online.target" ];
      after = [
        "compliance-agent-egress.service"
        "network-online.target"
      ];
      path = [ pkgs.nftables ];
      serviceConfig = services.egressRefresh { inherit exe configFile; };
    };

    systemd.services.compliance-agent-ruleset = {
      description = "compliance-agent: snapshot the nftables ruleset for the firewall check";
      wantedBy = [ "nftables.service" ];
      after = [ "nftables.service" ];
      serviceConfig = services.rulesetSnapshot {
        script = pkgs.writeShellScript "compliance-agent-ruleset-snapshot" ''
          set -eu
          # Renamed into place: the agent never reads a half-written listing.
          ${pkgs.nftables}/bin/nft list ruleset > "$RUNTIME_DIRECTORY/.ruleset.nft.tmp"
          ${pkgs.coreutils}/bin/mv "$RUNTIME_DIRECTORY/.ruleset.nft.tmp" "$RUNTIME_DIRECTORY/ruleset.nft"
        '';
      };
    };

    # The firewall check refuses a snapshot older than max(10 min, 3 polls).
    systemd.timers.compliance-agent-ruleset = snapshotTimer "ruleset";

    systemd.services.compliance-agent-disks = {
      description = "compliance-agent: snapshot block devices and LUKS status for the encryption check";
      wantedBy = [ "multi-user.target" ];
      after = [ "local-fs.target" ];
      serviceConfig = services.diskSnapshot {
        script = pkgs.writeShellScript "compliance-agent-disk-snapshot" (
          snapshots.diskScript {
            lsblk = "${pkgs.util-linux}/bin/lsblk";
            cryptsetup = "${pkgs.cryptsetup}/bin/cryptsetup";
            jq = getExe pkgs.jq;
            mv = "${pkgs.coreutils}/bin/mv";
          }
        );
      };
    };

    # Likewise the encryption check.
    systemd.timers.compliance-agent-disks = snapshotTimer "disk";

    systemd.timers.compliance-agent-egress-refresh = mkIf cfg.egress.enable {
      description = "compliance-agent: periodic egress allowlist refresh";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnActiveSec = "1min";
        OnUnitActiveSec = cfg.egress.refreshInterval;
        AccuracySec = "10s";
      };
    };

    # The healer's tree: root's own state, the agent's drop box, root's results (see
    # modules/lib/config.nix). The healer refuses to run when any of it is wrong.
    systemd.tmpfiles.rules = agentConfig.healTmpfilesRules;

    systemd.paths.compliance-agent-heal = {
      description = "compliance-agent: start the healer when the agent drops a heal request";
      wantedBy = [ "paths.target" ];
      pathConfig = services.healPath;
    };

    systemd.timers.compliance-agent-heal = {
      description = "compliance-agent: run the healer when the maintenance window opens, and now and then";
      wantedBy = [ "timers.target" ];
      timerConfig = services.healTimer cfg.maintenanceWindow;
    };

    systemd.services.compliance-agent-heal-init = {
      description = "compliance-agent: create the healer's state once";
      wantedBy = [ "multi-user.target" ];
      before = [
        "compliance-agent-heal.service"
        "compliance-agent.service"
      ];
      after = [ "systemd-tmpfiles-setup.service" ];
      unitConfig.ConditionPathExists = "!${healDir}/state/healer.db";
      serviceConfig = services.healInit { inherit exe configFile; };
    };

    systemd.services.compliance-agent-heal-failed = {
      description = "compliance-agent: report a failed healer run as a result the agent turns into evidence";
      serviceConfig = services.healFailed { inherit exe configFile; };
    };

    # A switch must not restart or stop the healer halfway through its own switch (as nixpkgs'
    # system.autoUpgrade does for nixos-upgrade.service).
    systemd.services.compliance-agent-heal = {
      description = "compliance-agent healer: verify dropped heal orders, hold them for the window, apply them";
      restartIfChanged = false;
      unitConfig = services.healUnit // {
        X-StopOnRemoval = false;
      };
      after = [ "compliance-agent-heal-init.service" ];
      path = [
        config.system.build.nixos-rebuild
        config.nix.package.out
        pkgs.gitMinimal
        config.programs.ssh.package
      ] ++ checkTools;
      environment =
        config.nix.envVars
        // {
          HOME = "/root";
        }
        // healNixAccess.environment
        // config.networking.proxy.envVars;
      serviceConfig =
        services.heal { inherit exe configFile; }
        // optionalAttrs (healNixAccess.loadCredentials != [ ]) {
          LoadCredential = healNixAccess.loadCredentials;
        };
    };
  };

  # No maintainer handle in lib.maintainers yet (README, "NixOS").
  meta.maintainers = [ ];
}
