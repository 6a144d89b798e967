# The rules between options that the agent's ConfigSchema (src/config/schema.ts) also checks in
# config.json, as NixOS assertions: `nix flake check` fails before an appliance would refuse its
# config at start. test/nix/config-rules.test.ts gives both the same option values and holds them
# to the same verdicts. Pure: builtins only; `cfg` is the option values (null when unset).
let
  agentConfig = import ./config.nix;
  inherit (builtins)
    attrNames
    elem
    elemAt
    filter
    foldl'
    isString
    length
    map
    split
    stringLength
    substring
    ;
  hasPrefix = p: s: substring 0 (stringLength p) s == p;
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
  keyBytes =
    k:
    let
      parts = filter isString (split ":" k);
    in
    elemAt parts (length parts - 1);
in
{
  assertions =
    cfg:
    let
      reseller = cfg.deploymentMode == "reseller";
      mcpHost = agentConfig.urlHost cfg.mcpUrl;
      rmmHost = if cfg.rmmWebhookUrl == null then null else agentConfig.urlHost cfg.rmmWebhookUrl;
      syslogHost = if cfg.syslogTarget == null then null else agentConfig.syslogHost cfg.syslogTarget;
      tlsSyslog = cfg.syslogTarget != null && hasPrefix "tls://" cfg.syslogTarget;
      distinctOrderKeys = length (unique (map keyBytes cfg.trustedOrderKeys));
    in
    [
      {
        assertion = !reseller || cfg.resellerId != null;
        message = "services.compliance-agent.resellerId: is required when deploymentMode is \"reseller\".";
      }
      {
        assertion = elem mcpHost cfg.allowedHosts;
        message = "services.compliance-agent.allowedHosts: must include the mcpUrl host \"${toString mcpHost}\", or the egress allowlist blocks the MCP.";
      }
      {
        assertion = !(reseller && cfg.rmmWebhookUrl != null) || cfg.webhookSecretFile != null;
        message = "services.compliance-agent.webhookSecretFile: is required when rmmWebhookUrl is set in reseller mode (the webhook is signed with it).";
      }
      {
        assertion = !reseller || rmmHost == null || elem rmmHost cfg.allowedHosts;
        message = "services.compliance-agent.allowedHosts: must include the rmmWebhookUrl host \"${toString rmmHost}\", or the webhook cannot be reached.";
      }
      {
        assertion = !reseller || syslogHost == null || elem syslogHost cfg.allowedHosts;
        message = "services.compliance-agent.allowedHosts: must include the syslogTarget host \"${toString syslogHost}\", or syslog cannot be reached.";
      }
      {
        assertion = !(reseller && tlsSyslog) || cfg.syslogCaFile != null;
        message = "services.compliance-agent.syslogCaFile: is required for a tls:// syslogTarget: the CA that signs the receiver certificate (/etc/ssl/certs/ca-certificates.crt for a public CA).";
      }
      {
        assertion = cfg.syslogCaFile == null || tlsSyslog;
        message = "services.compliance-agent.syslogCaFile: is only used with a tls:// syslogTarget; a tcp:// target sends evidence unencrypted, so remove syslogCaFile to mean it.";
      }
      {
        assertion = cfg.webhookCaFile == null || cfg.rmmWebhookUrl != null;
        message = "services.compliance-agent.webhookCaFile: is only used with rmmWebhookUrl.";
      }
      {
        assertion = (cfg.closureSubstituters == [ ]) == (cfg.closureTrustedPublicKeys == [ ]);
        message = "services.compliance-agent.closureSubstituters and closureTrustedPublicKeys: set both or neither.";
      }
    ]
    ++ map (type: {
      assertion = cfg.orderSignaturesRequired.${type} <= distinctOrderKeys;
      message = "services.compliance-agent.orderSignaturesRequired.${type}: needs ${toString cfg.orderSignaturesRequired.${type}} signers but trustedOrderKeys holds ${toString distinctOrderKeys} distinct key(s).";
    }) (attrNames cfg.orderSignaturesRequired);
}
