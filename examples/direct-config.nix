# Direct mode: the MSP serves the clinic itself; evidence goes to the MCP only (no webhook, no
# syslog). The baseline lives in the site repository as JSON and is referenced by path.
#
# The private files are root-only agenix secrets: the site flake imports agenix and keeps the
# encrypted secrets/*.age files next to this one. The MCP's CA certificate is public and comes
# from the store.
{ config, ... }:
let
  secret = name: config.age.secrets."compliance-agent-${name}".path;
in
{
  # Decrypted to /run/agenix/compliance-agent-... (root, 0400) at activation.
  age.secrets = {
    compliance-agent-client-cert.file = ./secrets/compliance-agent-client-cert.age;
    compliance-agent-client-key.file = ./secrets/compliance-agent-client-key.age;
    compliance-agent-evidence-key.file = ./secrets/compliance-agent-evidence-key.age;
  };

  environment.etc."compliance-agent/mcp-ca.pem".source = ./mcp-ca.example.pem;

  # The egress allowlist is an nftables table: this machine's firewall runs on nftables.
  networking.nftables.enable = true;

  services.compliance-agent = {
    enable = true;

    siteId = "dental-042";
    deploymentMode = "direct";

    mcpUrl = "https://mcp.msp.example";
    allowedHosts = [
      "mcp.msp.example"
      "cache.msp.example"
      "cache.nixos.org"
    ];

    caFile = "/etc/compliance-agent/mcp-ca.pem";
    clientCertFile = secret "client-cert";
    clientKeyFile = secret "client-key";
    signingKeyFile = secret "evidence-key";
    # Two MSP keys, each kept on its own offline machine; switches and rollbacks need both.
    trustedOrderKeys = [
      "msp-2026:3lcdSggpMwEweYboCusBZLTqMpVSjkp1Zg2lQ1VMZiI="
      "msp-2026-b:qyxI2FtpAs1nZ0oz9SqFRHhZqbNAIhHjKWgd1qMuRBs="
    ];
    orderSignaturesRequired = {
      apply_baseline = 2;
      apply_closure = 2;
      rollback = 2;
    };

    # The recommended fleet mode: the MSP builds the system toplevel once, pushes it to its cache
    # signed with its cache key, and sends apply_closure orders naming the store path. The
    # appliance substitutes it from here only, signatures required, and evaluates no Nix code.
    closureSubstituters = [ "https://cache.msp.example" ];
    closureTrustedPublicKeys = [ "cache.msp.example-1:0X7ZTkX9OOamYSxRWdfHwrFS3K4K8YhlpTJI7TjmRvk=" ];

    baselinePath = ./direct-baseline.json;

    # A small office machine that also does other work: only the agent's own traffic is held
    # to the allowlist.
    egress.scope = "agent";
    # The MCP's fixed address: the agent unit may reach nothing else (systemd IPAddressAllow).
    egress.agentAddressAllow = [ "203.0.113.10" ];
  };

  networking.nameservers = [ "192.168.1.1" ];
}
