# Direct mode: the MSP serves the clinic itself; evidence goes to the MCP only (no webhook, no
# syslog). The baseline lives in the site repository as JSON and is referenced by path.
#
# Secrets as agenix puts them (age.secrets.compliance-agent-client-key.file = ...;).
{
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
    clientCertFile = "/run/agenix/compliance-agent-client-cert";
    clientKeyFile = "/run/agenix/compliance-agent-client-key";
    signingKeyFile = "/run/agenix/compliance-agent-evidence-key";
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
