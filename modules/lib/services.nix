# serviceConfig of every compliance-agent unit, from the executable and config.json paths.
#
# Pure: builtins only. The NixOS module uses these sets as they are, and CI renders the agent's
# with unit.nix and scores it with `systemd-analyze security --offline`, so what is scored is
# what the module installs.
let
  hardening = import ./hardening.nix;
  agentConfig = import ./config.nix;
  inherit (agentConfig) stateDir healDir healUser;
  # The user of the two helpers that need CAP_NET_ADMIN (egress refresh, ruleset snapshot).
  netUser = "compliance-agent-net";
  # Written by the agent unit's ExecStopPost=, read by the agent at start (named in src/state/layout.ts).
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

  # A oneshot that writes a snapshot for the agent into /run/<dir>: files it creates belong to
  # the agent's group, which may read them and nobody else; the directory outlives the oneshot,
  # since the agent reads it between runs.
  snapshotOutput =
    { script, dir }:
    {
      Type = "oneshot";
      ExecStart = script;
      Group = "compliance-agent";
      RuntimeDirectory = dir;
      RuntimeDirectoryMode = "0750";
      RuntimeDirectoryPreserve = true;
      UMask = "0027";
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
      # The healer's drop box is the only place outside its state the agent may write ("-": a
      # missing one is a failed heal request with evidence, not an agent that cannot start).
      ReadWritePaths = [ "-${healDir}/requests" ];
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

  # Fills the allowlist's sets. The module runs it twice: as compliance-agent-egress.service,
  # which stays active after nftables starts and refills the sets on every nftables reload
  # (remainAfterExit: ExecReload, ReloadPropagatedFrom=nftables.service), and from a timer as
  # compliance-agent-egress-refresh.service (a timer cannot start an active unit again).
  egressRefresh =
    {
      exe,
      configFile,
      remainAfterExit ? false,
    }:
    let
      refresh = builtins.concatStringsSep " " [
        exe
        "egress-refresh"
        "--config ${configFile}"
        "--cache %S/compliance-agent-egress/last-good.json"
        "--status %t/compliance-agent-egress/status.json"
      ];
    in
    hardening.egressRefresh
    // {
      Type = "oneshot";
      ExecStart = refresh;
    }
    # Stays active even when a lookup failed (`-`: the failure is in the journal and the status
    # file, and the timer unit reports it), or nftables' next reload would not reach it.
    // (
      if remainAfterExit then
        {
          RemainAfterExit = true;
          ExecStart = "-${refresh}";
          ExecReload = "-${refresh}";
        }
      else
        { }
    )
    // {
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
    // snapshotOutput {
      inherit script;
      dir = agentConfig.rulesetSnapshotDir;
    }
    // {
      User = netUser;
      RestrictAddressFamilies = [
        "AF_UNIX"
        "AF_NETLINK"
      ];
      IPAddressDeny = "any";
    };

  # `lsblk` and `cryptsetup status` for the encryption check (snapshots.nix, diskScript): root,
  # since the device-mapper ioctls behind cryptsetup need CAP_SYS_ADMIN, but with that one
  # capability, no network and a read-only system; the snapshot readable by the agent's group.
  # No PrivateDevices: seeing /dev/mapper is the point.
  diskSnapshot =
    { script }:
    snapshotOutput {
      inherit script;
      dir = agentConfig.diskSnapshotDir;
    }
    // {
      CapabilityBoundingSet = "CAP_SYS_ADMIN";
      NoNewPrivileges = true;
      ProtectSystem = "strict";
      ProtectHome = true;
      PrivateTmp = true;
      PrivateNetwork = true;
      IPAddressDeny = "any";
      RestrictAddressFamilies = [
        "AF_UNIX"
        "AF_NETLINK"
      ];
      ProtectKernelTunables = true;
      ProtectKernelModules = true;
      ProtectControlGroups = true;
      ProtectClock = true;
      RestrictNamespaces = true;
      LockPersonality = true;
      MemoryDenyWriteExecute = true;
      SystemCallArchitectures = "native";
    };

  # The root side: re-verifies each request in the drop box itself, holds orders for the window in
  # its own state, acts. It switches the system, so it is not sandboxed beyond a private /tmp;
  # what keeps the agent from steering it is that it follows no path the agent can change.
  heal =
    { exe, configFile }:
    {
      Type = "oneshot";
      ExecStart = builtins.concatStringsSep " " [
        exe
        "heal-apply"
        "--config ${configFile}"
        "--agent-user ${healUser}"
      ];
      PrivateTmp = true;
      # Results get their mode (0640, the agent's group) on the descriptor; nothing else is shared.
      UMask = "0077";
      # heal-apply bounds each action itself (a switch may build for an hour, a backup run for
      # longer); this only stops a healer that hangs outright.
      TimeoutStartSec = "12h";
    };

  # [Unit] of the healer: the agent can start it at will (any file it drops), so starts are
  # bounded, and a failure (or the limit) leaves a failed result the agent turns into evidence.
  healUnit = {
    StartLimitIntervalSec = "10min";
    StartLimitBurst = 30;
    OnFailure = "compliance-agent-heal-failed.service";
  };

  # Creates the healer's state once. heal-apply itself never creates it, and --init refuses to
  # replace one, so a state that goes missing later stops the healer instead of reading as empty.
  healInit =
    { exe, configFile }:
    {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = "${exe} heal-apply --config ${configFile} --agent-user ${healUser} --init";
      UMask = "0077";
    };

  healFailed =
    { exe, configFile }:
    {
      Type = "oneshot";
      ExecStart = "${exe} heal-apply --config ${configFile} --agent-user ${healUser} --record-failure compliance-agent-heal.service";
      UMask = "0077";
    };

  # The drop box triggers the healer on any change (an edge, not a level: root never empties the
  # drop box, so DirectoryNotEmpty= would fire forever); the trigger is rate-limited too.
  healPath = {
    PathChanged = "${healDir}/requests";
    TriggerLimitIntervalSec = "1min";
    TriggerLimitBurst = 20;
  };

  # Held orders run when the window opens, whatever the agent does; the interval catches a
  # window whose first minutes had an insane clock, and a drop box change the path unit missed.
  healTimer = maintenanceWindow: {
    OnCalendar = "*-*-* ${builtins.substring 0 5 maintenanceWindow}:00 UTC";
    OnUnitInactiveSec = "15min";
    OnBootSec = "5min";
    Persistent = true;
    AccuracySec = "30s";
  };
}
