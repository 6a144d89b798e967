# config.json for the agent, from the module's option values: the agent's options (same
# names and defaults as docs/config.md) plus caFile, trustedOrderKeys, stateDir, healDir, heartbeatInterval, maxDeferral
# and enrollment
# (src/config/schema.ts, whose ConfigSchema rejects any other key).
#
# Every file option is handed to the agent with systemd's LoadCredential=: the unit copies it
# into /run/credentials/<unit>/ readable by the service user only, and config.json names that
# copy. The secret itself never enters the Nix store and can stay root-only (sops-nix, agenix).
#
# Pure: builtins only; CI renders it with `nix-instantiate --eval` and validates the output with
# the agent's own ConfigSchema.
let
  inherit (builtins)
    attrNames
    concatLists
    filter
    head
    listToAttrs
    map
    match
    ;

  # The agent's core options: name = default. Options without a default (siteId, baselinePath,
  # clientCertFile, clientKeyFile, signingKeyFile) are required.
  defaults = {
    mcpUrl = "https://mcp.local";
    allowedHosts = [ "mcp.local" ];
    deploymentMode = "reseller";
    resellerId = null;
    policyVersion = "1.0";
    webhookSecretFile = null;
    pollInterval = 60;
    orderTtl = 900;
    maintenanceWindow = "02:00-04:00";
    allowDisruptiveOutsideWindow = false;
    evidenceRetention = 200;
    pruneRetentionDays = 90;
    ntpMaxSkewMs = 5000;
    rmmWebhookUrl = null;
    syslogTarget = null;
    rebuildHealthCheckTimeout = 60;
    logLevel = "INFO";
    # Beyond the core options.
    heartbeatInterval = 3600;
    # Seconds a compliant patching/encryption (stable) or time result is reused while its key fact is unchanged.
    stableCheckInterval = 900;
    timeCheckInterval = 300;
    syslogCaFile = null;
    webhookCaFile = null;
    # Longest execute_by an order may carry, in seconds after issued_at: 7 days.
    maxDeferral = 604800;
    # What a signed order can make root do. Empty allowedFlakes: the baseline flakeRef's repository.
    allowedFlakes = [ ];
    orderSignaturesRequired = { };
    closureSubstituters = [ ];
    closureTrustedPublicKeys = [ ];
    timeServers = [ ];
    certRenewBeforeDays = 30;
    mcpReceiptKeys = [ ];
    controlPlaneMaxAge = 86400;
  };

  stateDir = "/var/lib/compliance-agent";
  # The root healer's tree (named in src/state/layout.ts): state/ root 0700, requests/ the drop
  # box the agent's group may only add its own files to (sticky), results/ root writes and the
  # agent reads.
  healDir = "/var/lib/compliance-agent-heal";
  healUser = "compliance-agent";
  # systemd-tmpfiles lines for that tree; `d` also corrects a wrong mode or owner at every boot.
  healTmpfilesRules = [
    "d ${healDir} 0755 root root - -"
    "d ${healDir}/state 0700 root root - -"
    "d ${healDir}/requests 1770 root ${healUser} - -"
    "d ${healDir}/results 0750 root ${healUser} - -"
  ];
  # Listing the ruleset needs CAP_NET_ADMIN, which the agent never holds: a separate unit writes
  # `nft list ruleset` here and the firewall check reads it.
  rulesetSnapshotDir = "compliance-agent-ruleset";
  rulesetSnapshotFile = "/run/${rulesetSnapshotDir}/ruleset.nft";
  # The Prometheus textfile, in a world-readable runtime directory of its own (the state directory
  # is 0700) where node_exporter's textfile collector reads it.
  metricsDir = "compliance-agent-metrics";
  metricsFile = "/run/${metricsDir}/compliance-agent.prom";
  # Likewise for the encryption check: lsblk sees no /dev/mapper under PrivateDevices and
  # `cryptsetup status` needs root, so a root unit writes both here (snapshots.nix).
  diskSnapshotDir = "compliance-agent-disks";
  diskSnapshotFile = "/run/${diskSnapshotDir}/disks.json";
  unitName = "compliance-agent.service";
  credentialsDir = "/run/credentials/${unitName}";

  # Option name -> credential name in the unit.
  credentialNames = {
    caFile = "mcp-ca.pem";
    clientCertFile = "client-cert.pem";
    clientKeyFile = "client-key.pem";
    signingKeyFile = "evidence-signing.key";
    webhookSecretFile = "webhook-secret";
    syslogCaFile = "syslog-ca.pem";
    webhookCaFile = "webhook-ca.pem";
  };

  fileOptions = attrNames credentialNames;

  # Enrollment (`enrollment.tokenFile`): the appliance makes its own keys, so the identity lives
  # in the agent's state directory instead of arriving as credentials. The agent owns it (0700,
  # files 0600) because it renews its certificate and rotates its evidence key itself.
  identityDir = "${stateDir}/identity";
  identityFiles = {
    clientCertFile = "client-cert.pem";
    clientKeyFile = "client-key.pem";
    signingKeyFile = "evidence-signing.key";
  };
  enrolling = cfg: (cfg.enrollment.tokenFile or null) != null;
  # The enrollment unit's own credentials: the token and the CA it pins for POST /enroll.
  enrollUnitName = "compliance-agent-enroll.service";
  enrollCredentialsDir = "/run/credentials/${enrollUnitName}";
  enrollCredentials = cfg: [
    "enrollment-token:${toString cfg.enrollment.tokenFile}"
    "${credentialNames.caFile}:${toString cfg.caFile}"
  ];
  fileValue =
    cfg: o:
    if enrolling cfg && identityFiles ? ${o} then
      "${identityDir}/${identityFiles.${o}}"
    else if cfg.${o} == null then
      null
    else
      "${credentialsDir}/${credentialNames.${o}}";

  # Options copied to config.json as they are.
  plainOptions = [
    "mcpUrl"
    "allowedHosts"
    "siteId"
    "hostId"
    "deploymentMode"
    "resellerId"
    "policyVersion"
    "pollInterval"
    "orderTtl"
    "maintenanceWindow"
    "allowDisruptiveOutsideWindow"
    "evidenceRetention"
    "pruneRetentionDays"
    "ntpMaxSkewMs"
    "rmmWebhookUrl"
    "syslogTarget"
    "rebuildHealthCheckTimeout"
    "logLevel"
    "trustedOrderKeys"
    "heartbeatInterval"
    "stableCheckInterval"
    "timeCheckInterval"
    "maxDeferral"
    "allowedFlakes"
    "orderSignaturesRequired"
    "closureSubstituters"
    "closureTrustedPublicKeys"
    "timeServers"
    "mcpReceiptKeys"
    "controlPlaneMaxAge"
  ];

  # `toString` and never "${path}": interpolating a path literal would copy the secret into the
  # world-readable store.
  # A path literal (allowed for the public files, a CA or a certificate) is interpolated instead,
  # so it names the store copy and not a path on the machine that evaluated it.
  loadCredentials =
    cfg:
    concatLists (
      map (
        o:
        if cfg.${o} == null || (enrolling cfg && identityFiles ? ${o}) then
          [ ]
        else
          [
            "${credentialNames.${o}}:${if builtins.isPath cfg.${o} then "${cfg.${o}}" else toString cfg.${o}}"
          ]
      ) fileOptions
    );

  # nixAccessTokensFile for the healer alone: a credential (a root-only copy in the unit's
  # credentials directory, %d) that its nix reads as a user nix.conf. The token never enters a
  # URL, config.json, the store or the environment; only the credential's path does.
  healNixAccess =
    file:
    if file == null then
      {
        environment = { };
        loadCredentials = [ ];
      }
    else
      {
        environment.NIX_USER_CONF_FILES = "%d/nix-access-tokens";
        loadCredentials = [ "nix-access-tokens:${toString file}" ];
      };

  # cfg: the option values (baselinePath already resolved to a path string).
  render =
    cfg:
    listToAttrs (map (o: { name = o; value = cfg.${o}; }) plainOptions)
    // listToAttrs (
      map (o: {
        name = o;
        value = fileValue cfg o;
      }) fileOptions
    )
    // {
      # Interpolated: a path literal is copied to the store (a baseline is public).
      baselinePath = "${cfg.baselinePath}";
      inherit stateDir healDir rulesetSnapshotFile metricsFile diskSnapshotFile;
      machineIdFile = "/etc/machine-id";
      certRenewBeforeDays = cfg.enrollment.renewBeforeDays or defaults.certRenewBeforeDays;
    };

  # The host of an https:// URL (brackets of an IPv6 literal removed), or null.
  urlHost =
    url:
    let
      m = match httpsUrlRegex url;
    in
    if m == null then
      null
    else
      head (filter (x: x != null) [
        (builtins.elemAt m 1)
        (builtins.elemAt m 2)
      ]);

  # The host of a tcp:// or tls:// syslog target, or null.
  syslogHost =
    target:
    let
      m = match syslogTargetRegex target;
    in
    if m == null then
      null
    else
      head (filter (x: x != null) [
        (builtins.elemAt m 2)
        (builtins.elemAt m 3)
      ]);

  # For types.strMatching: an https:// URL that urlHost accepts, a syslog target that syslogHost
  # accepts, a site or host identifier.
  httpsUrlRegex = "https://(\\[([^]]+)]|([^]/:?#[]+))(:[0-9]+)?([/?#].*)?";
  syslogTargetRegex = "(tcp|tls)://(\\[([^]]+)]|([^]/:[]+)):[0-9]{1,5}";
  identRegex = "[A-Za-z0-9][A-Za-z0-9._-]{0,127}";
  windowRegex = "([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]";

  # A flake reference pinned to a git commit, as the agent requires of baseline.patching.flakeRef
  # and of apply_baseline orders (src/config/nix-refs.ts is the full check; this catches an
  # unpinned or local reference at evaluation time): git+https or github:/gitlab:/sourcehut:,
  # no user info, rev=<40 hex> (or owner/repo/<40 hex>), `#name`.
  pinnedFlakeRef =
    ref:
    let
      source = "(git\\+https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)+|(github|gitlab|sourcehut):[A-Za-z0-9_~][A-Za-z0-9._~-]*/[A-Za-z0-9_~][A-Za-z0-9._~-]*)";
      attr = "#[A-Za-z0-9_][A-Za-z0-9_-]*";
      ref_ = "ref=[A-Za-z0-9._/-]+";
      rev = "rev=[0-9a-f]{40}";
    in
    builtins.isString ref
    && (
      match "${source}\\?(${ref_}&)?${rev}(&${ref_})?${attr}" ref != null
      || match "(github|gitlab|sourcehut):[A-Za-z0-9_~][A-Za-z0-9._~-]*/[A-Za-z0-9_~][A-Za-z0-9._~-]*/[0-9a-f]{40}(\\?${ref_})?${attr}" ref != null
    );

  # The rev a pinned reference names (the baseline's configurationRevision must equal it).
  pinnedRev =
    ref:
    let
      q = match ".*[?&]rev=([0-9a-f]{40}).*" ref;
      p = match "[a-z]+:[^/]+/[^/]+/([0-9a-f]{40}).*" ref;
    in
    if q != null then head q else if p != null then head p else null;
  trustedKeyRegex = "[A-Za-z0-9][A-Za-z0-9._-]{0,127}:[A-Za-z0-9+/]{43}=";
in
{
  inherit
    defaults
    stateDir
    healDir
    healUser
    healTmpfilesRules
    rulesetSnapshotDir
    rulesetSnapshotFile
    metricsDir
    metricsFile
    diskSnapshotDir
    diskSnapshotFile
    unitName
    credentialsDir
    identityDir
    identityFiles
    enrolling
    enrollUnitName
    enrollCredentialsDir
    enrollCredentials
    credentialNames
    loadCredentials
    healNixAccess
    render
    urlHost
    syslogHost
    httpsUrlRegex
    syslogTargetRegex
    identRegex
    windowRegex
    trustedKeyRegex
    pinnedFlakeRef
    pinnedRev
    ;
}
