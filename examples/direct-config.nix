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
      "cache.nixos.org"
    ];

    caFile = "/etc/compliance-agent/mcp-ca.pem";
    clientCertFile = "/run/agenix/compliance-agent-client-cert";
    clientKeyFile = "/run/agenix/compliance-agent-client-key";
    signingKeyFile = "/run/agenix/compliance-agent-evidence-key";
    trustedOrderKeys = [ "msp-2026:3lcdSggpMwEweYboCusBZLTqMpVSjkp1Zg2lQ1VMZiI=" ];

    baselinePath = ./direct-baseline.json;

    # A small office machine that also does other work: only the agent's own traffic is held
    # to the allowlist.
    egress.scope = "agent";
    # The MCP's fixed address: the agent unit may reach nothing else (systemd IPAddressAllow).
    egress.agentAddressAllow = [ "203.0.113.10" ];
  };

  networking.nameservers = [ "192.168.1.1" ];
}
