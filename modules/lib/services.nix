# serviceConfig of every compliance-agent unit, from the executable and config.json paths.
#
# Pure: builtins only. The NixOS module uses these sets as they are, and CI renders the agent's
# with unit.nix and scores it with `systemd-analyze security --offline`, so what is scored is
# what the module installs.
let
  hardening = import ./hardening.nix;
  agentConfig = import ./config.nix;
  inherit (agentConfig) stateDir;
  # The user of the two helpers that need CAP_NET_ADMIN (egress refresh, ruleset snapshot).
  netUser = "compliance-agent-net";
  # Written by the agent unit's ExecStopPost=, read by the agent at start (src/agent/previous-exit.ts).
  previousExitFile = "previous-exit";
  # The agent unit's memory limits (systemd.resource-control MemoryHigh=/MemoryMax=), from
  # bench/RESULTS.md: at most ~80 MB RSS after 5,000 cycles (Node 24; ~70 on Node 20), of which
  # ~45 MB are the node binary's file pages. The cgroup also holds the check commands while they
  # run (up to eight at once) and page cache of the state database: MemoryHigh is twice the
  # measured figure, MemoryMax three times, so only a real leak reaches either.
  memory = {
    high = "160M";
    max = "240M";
  };
in
{
  inherit netUser;

  agent =
    {
      exe,
      configFile,
      loadCredentials,
      # A POSIX shell for ExecStopPost= (the module passes pkgs.runtimeShell).
      shell,
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
      # metrics.prom for node_exporter, which runs as another user: world-readable, kept across
      # restarts so a restart does not read as a vanished agent.
      RuntimeDirectory = agentConfig.metricsDir;
      RuntimeDirectoryMode = "0755";
      RuntimeDirectoryPreserve = "restart";
      Restart = "on-failure";
      RestartSec = "10s";
      # Exit 2 is a bad config: restarting cannot fix it.
      RestartPreventExitStatus = 2;
      # SIGTERM lets the current database write finish.
      TimeoutStopSec = "30s";
      # exe is the package's launcher: node with the V8 flags that bound the agent's memory
      # (bin/node-flags). Above MemoryHigh the kernel reclaims and throttles, at MemoryMax its OOM
      # killer ends the agent (sizes: `memory` above).
      MemoryHigh = memory.high;
      MemoryMax = memory.max;
      OOMPolicy = "stop";
      # systemd tells the next run nothing about the last one, so record how this one ended
      # ($SERVICE_RESULT is "oom-kill" when the memory limit killed it); the agent reads the
      # file at its next start and chains an alert bundle. $$ is a literal $ for the shell.
      ExecStopPost = "${shell} -c 'echo \"SERVICE_RESULT=$$SERVICE_RESULT EXIT_CODE=$$EXIT_CODE EXIT_STATUS=$$EXIT_STATUS\" > ${stateDir}/${previousExitFile}'";
    };

  # `compliance-agent enroll`, once, before the agent, while no certificate exists. The agent's
  # user and sandbox: it makes the identity in the agent's state directory, which root never
  # reads. The token and the CA come as this unit's own credentials; only the `+` line runs as
  # root, and all it does is delete the original token file (the credential copy is read-only).
  enroll =
    {
      exe,
      configFile,
      loadCredentials,
      removeToken,
      ipAddressAllow ? [ ],
    }:
    hardening.agent
    // (if ipAddressAllow == [ ] then { } else hardening.ipAddressAllow ipAddressAllow)
    // {
      Type = "oneshot";
      ExecStart = builtins.concatStringsSep " " [
        exe
        "enroll"
        "--config ${configFile}"
        "--token-file ${agentConfig.enrollCredentialsDir}/enrollment-token"
        "--ca-file ${agentConfig.enrollCredentialsDir}/${agentConfig.credentialNames.caFile}"
        "--keep-token"
      ];
      ExecStartPost = "+${removeToken}";
      User = "compliance-agent";
      Group = "compliance-agent";
      StateDirectory = "compliance-agent";
      StateDirectoryMode = "0700";
      LoadCredential = loadCredentials;
      # A refused token stays refused: no restart loop; the journal has the one-line reason.
      TimeoutStartSec = "5min";
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
      # Not the agent's identity: the last good addresses must not be writable by the agent, or
      # a compromised agent could widen its own allowlist. A static user, not DynamicUser: the
      # preserved status file must not pass to a recycled uid.
      User = netUser;
      Group = netUser;
      StateDirectory = "compliance-agent-egress";
      StateDirectoryMode = "0700";
      RuntimeDirectory = "compliance-agent-egress";
      RuntimeDirectoryMode = "0755";
      RuntimeDirectoryPreserve = true;
      # status.json is for the agent to read (the cache is written 0600 regardless).
      UMask = "0022";
    };

  # `nft list ruleset` for the agent's firewall check: CAP_NET_ADMIN and netlink only, no IP
  # socket, the snapshot readable by the agent's group and nobody else.
  rulesetSnapshot =
    { script }:
    hardening.egressRefresh
    // {
      Type = "oneshot";
      ExecStart = script;
      User = netUser;
      # Files it creates belong to the agent's group, which may read them.
      Group = "compliance-agent";
      RuntimeDirectory = agentConfig.rulesetSnapshotDir;
      RuntimeDirectoryMode = "0750";
      # The file must outlive this oneshot: the agent reads it between runs.
      RuntimeDirectoryPreserve = true;
      UMask = "0027";
      RestrictAddressFamilies = [
        "AF_UNIX"
        "AF_NETLINK"
      ];
      IPAddressDeny = "any";
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
