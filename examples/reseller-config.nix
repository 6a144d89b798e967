# Reseller mode: an MSP reseller runs the appliance; every evidence bundle also goes to the
# reseller's RMM (signed webhook) and SIEM (syslog over TLS).
#
# The private files are root-only sops-nix secrets (the site flake imports sops-nix and keeps
# the encrypted secrets/front-desk-1.yaml); the agent gets copies through systemd credentials,
# never the originals. The CA certificates are public and come from the store.
{ config, ... }:
let
  secret = name: config.sops.secrets."compliance-agent/${name}".path;
in
{
  # Decrypted to /run/secrets/compliance-agent/... (root, 0400) before services start; a changed
  # secret restarts the agent so it picks up the new copy.
  sops.secrets = {
    "compliance-agent/client.pem".restartUnits = [ "compliance-agent.service" ];
    "compliance-agent/client.key".restartUnits = [ "compliance-agent.service" ];
    "compliance-agent/evidence.key".restartUnits = [ "compliance-agent.service" ];
    "compliance-agent/webhook-secret".restartUnits = [ "compliance-agent.service" ];
    # Read by the healer's nix only, at each heal: nothing to restart.
    "compliance-agent/nix-access-tokens" = { };
  };

  environment.etc."compliance-agent/mcp-ca.pem".source = ./mcp-ca.example.pem;
  environment.etc."compliance-agent/siem-ca.pem".source = ./siem-ca.example.pem;
  environment.etc."compliance-agent/rmm-ca.pem".source = ./rmm-ca.example.pem;

  # The egress allowlist is an nftables table: the appliance's firewall runs on nftables.
  networking.nftables.enable = true;

  services.compliance-agent = {
    enable = true;

    siteId = "clinic-001";
    hostId = "front-desk-1";
    deploymentMode = "reseller";
    resellerId = "msp-alpha";

    mcpUrl = "https://mcp.msp-alpha.example";
    # Everything this appliance may reach over HTTPS: the MCP, the reseller's sinks, and what
    # nixos-rebuild fetches from when healing (binary cache, the site flake's host).
    allowedHosts = [
      "mcp.msp-alpha.example"
      "rmm.msp-alpha.example"
      "siem.msp-alpha.example"
      "cache.nixos.org"
      "github.com"
      "codeload.github.com"
    ];

    caFile = "/etc/compliance-agent/mcp-ca.pem";
    clientCertFile = secret "client.pem";
    clientKeyFile = secret "client.key";
    signingKeyFile = secret "evidence.key";
    # Two keys during a rotation; drop the old one and its orders stop being accepted.
    trustedOrderKeys = [
      "msp-alpha-2026:SyRmHhQMwUv+B2J3eZUtd4O4zKhgcRZthnYYawfmgxE="
      "msp-alpha-2027:mN7eeIX/8ZCH6V2gOiUEAZK1dfrLYOy2M1vyRcwesRw="
    ];

    rmmWebhookUrl = "https://rmm.msp-alpha.example/hooks/compliance";
    webhookSecretFile = secret "webhook-secret";
    # The only CA trusted for the RMM's certificate (unset: the public roots).
    webhookCaFile = "/etc/compliance-agent/rmm-ca.pem";
    syslogTarget = "tls://siem.msp-alpha.example:6514";
    syslogCaFile = "/etc/compliance-agent/siem-ca.pem";

    # The order key is not root-equivalent: two of the keys above must sign a switch or a
    # rollback, flakes come only from the MSP's site repository, pinned to a commit.
    orderSignaturesRequired = {
      apply_baseline = 2;
      apply_closure = 2;
      rollback = 2;
    };
    allowedFlakes = [ "github:msp-alpha/sites" ];
    # Private site repository: the token reaches only the healer's nix, never a URL.
    nixAccessTokensFile = secret "nix-access-tokens";

    maintenanceWindow = "02:00-04:00";
    policyVersion = "2026.11";

    baseline = {
      version = 1;
      patching = {
        configurationRevision = "9b1e4d7a2c5f80634e1d2c3b4a5968778695a4b3";
        # Pinned: a heal builds exactly this reviewed commit, never whatever a branch points at.
        flakeRef = "github:msp-alpha/sites?rev=9b1e4d7a2c5f80634e1d2c3b4a5968778695a4b3#clinic-001-front-desk-1";
      };
      services.required = [
        "sshd.service"
        "restic-backups-clinic.service"
        "chronyd.service"
      ];
      backup = {
        unit = "restic-backups-clinic.service";
        stampFile = "/var/lib/restic-backups-clinic/last-success";
        maxAgeHours = 26;
      };
      firewall.rulesetHash = "sha256:5d41402abc4b2a76b9719d911017c592ae6e5c1b8f7a2e8d3c1f0e9d8c7b6a59";
      encryption.requiredMounts = [ "/" ];
    };

    egress.resolvers = [
      "192.168.10.1"
      "9.9.9.9"
    ];
  };
}
