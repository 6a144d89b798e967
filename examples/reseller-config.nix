# Reseller mode: an MSP reseller runs the appliance; every evidence bundle also goes to the
# reseller's RMM (signed webhook) and SIEM (syslog over TLS).
#
# The file options point at root-only secrets outside the Nix store, here as sops-nix puts them
# (sops.secrets."compliance-agent/client.key" = { }; and so on); agenix paths work the same.
# The agent gets copies through systemd credentials, never the originals.
{
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
    clientCertFile = "/run/secrets/compliance-agent/client.pem";
    clientKeyFile = "/run/secrets/compliance-agent/client.key";
    signingKeyFile = "/run/secrets/compliance-agent/evidence.key";
    # Two keys during a rotation; drop the old one and its orders stop being accepted.
    trustedOrderKeys = [
      "msp-alpha-2026:SyRmHhQMwUv+B2J3eZUtd4O4zKhgcRZthnYYawfmgxE="
      "msp-alpha-2027:mN7eeIX/8ZCH6V2gOiUEAZK1dfrLYOy2M1vyRcwesRw="
    ];

    rmmWebhookUrl = "https://rmm.msp-alpha.example/hooks/compliance";
    webhookSecretFile = "/run/secrets/compliance-agent/webhook-secret";
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
    nixAccessTokensFile = "/run/secrets/compliance-agent/nix-access-tokens";

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
