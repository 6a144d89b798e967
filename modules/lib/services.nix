# serviceConfig of every compliance-agent unit, from the executable and config.json paths.
#
# Pure: builtins only. The NixOS module uses these sets as they are, and CI renders the agent's
# with unit.nix and scores it with `systemd-analyze security --offline`, so what is scored is
# what the module installs.
let
  hardening = import ./hardening.nix;
  agentConfig = import ./config.nix;
  inherit (agentConfig) stateDir;
in
{
  agent =
    {
      exe,
      configFile,
      loadCredentials,
      ipAddressAllow ? [ ],
    }:
    hardening.agent
    // (if ipAddressAllow == [ ] then { } else hardening.ipAddressAllow ipAddressAllow)
    // {
      Type = "simple";
      ExecStart = "${exe} run --config ${configFile}";
      User = "compliance-agent";
      Group = "compliance-agent";
      StateDirectory = "compliance-agent";
      StateDirectoryMode = "0700";
      WorkingDirectory = stateDir;
      LoadCredential = loadCredentials;
      Restart = "on-failure";
      RestartSec = "10s";
      # Exit 2 is a bad config: restarting cannot fix it.
      RestartPreventExitStatus = 2;
      # SIGTERM lets the current database write finish.
      TimeoutStopSec = "30s";
    };

  prune =
    { exe, configFile }:
    hardening.agent
    // {
      Type = "oneshot";
      ExecStart = "${exe} prune --config ${configFile}";
      User = "compliance-agent";
      Group = "compliance-agent";
      StateDirectory = "compliance-agent";
      StateDirectoryMode = "0700";
      # Pruning is local work.
      PrivateNetwork = true;
      RestrictAddressFamilies = [ "AF_UNIX" ];
    };

  egressRefresh =
    { exe, configFile }:
    hardening.egressRefresh
    // {
      Type = "oneshot";
      ExecStart = builtins.concatStringsSep " " [
        exe
        "egress-refresh"
        "--config ${configFile}"
        "--cache %S/compliance-agent-egress/last-good.json"
        "--status %t/compliance-agent-egress/status.json"
      ];
      # Its own identity and state: the last good addresses must not be writable by the agent,
      # or a compromised agent could widen its own allowlist.
      DynamicUser = true;
      StateDirectory = "compliance-agent-egress";
      RuntimeDirectory = "compliance-agent-egress";
      RuntimeDirectoryMode = "0755";
      RuntimeDirectoryPreserve = true;
      # status.json is for the agent to read (the cache is written 0600 regardless).
      UMask = "0022";
    };

  # The root side (DESIGN 4): re-verifies each spooled order itself and acts. It switches the
  # system, so it is not sandboxed beyond a private /tmp.
  heal =
    { exe, configFile }:
    {
      Type = "oneshot";
      ExecStart = builtins.concatStringsSep " " [
        exe
        "heal-apply"
        "--config ${configFile}"
        "--applied %S/compliance-agent-heal/applied.json"
      ];
      # Root's own record of applied requests, out of the agent's reach.
      StateDirectory = "compliance-agent-heal";
      StateDirectoryMode = "0700";
      PrivateTmp = true;
      # Results in the agent's (0700) spool are written 0644 so the agent can read them.
      UMask = "0022";
      # heal-apply bounds each action itself (a switch may build for an hour, a backup run for
      # longer); this only stops a healer that hangs outright.
      TimeoutStartSec = "12h";
    };
}
