# systemd sandboxing for the compliance-agent units, as plain attribute sets.
#
# Pure: builtins only. The NixOS module merges these into serviceConfig; CI renders the agent
# unit from the same sets (unit.nix) and scores it with `systemd-analyze security --offline`,
# which must stay at or below `exposureTarget`.
let
  # Shared by every unit that runs the agent's code without privileges.
  unprivileged = {
    CapabilityBoundingSet = "";
    AmbientCapabilities = "";
    NoNewPrivileges = true;
    UMask = "0077";

    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    PrivateDevices = true;
    DevicePolicy = "closed";
    PrivateMounts = true;
    ProtectClock = true;
    ProtectControlGroups = true;
    ProtectHostname = true;
    ProtectKernelLogs = true;
    ProtectKernelModules = true;
    ProtectKernelTunables = true;
    ProtectProc = "invisible";
    ProcSubset = "pid";
    KeyringMode = "private";

    LockPersonality = true;
    # V8 compiles JavaScript to machine code at run time and undici parses HTTP with
    # WebAssembly: both need memory that is written and then executed, which
    # MemoryDenyWriteExecute forbids (Node dies with SIGSEGV/SIGTRAP at start). `node --jitless`
    # would allow it but disables WebAssembly, so undici could not run at all.
    MemoryDenyWriteExecute = false;
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    RemoveIPC = true;

    SystemCallArchitectures = "native";
    SystemCallFilter = [
      "@system-service"
      # V8 uses memory protection keys where the CPU has them.
      "@pkey"
      "~@privileged"
      "~@resources"
    ];
    # Node raises its open-file limit at start (setrlimit, in @resources): refuse it with EPERM,
    # which Node tolerates, instead of killing the process.
    SystemCallErrorNumber = "EPERM";
  };
in
{
  # systemd-analyze security exposure (0.0 best, 10.0 worst) the agent unit must not exceed.
  exposureTarget = "1.2";

  # The network-facing agent and its prune job: no capability, no listening socket, the
  # network only as a client, its state directory the only writable path.
  agent = unprivileged // {
    PrivateUsers = true;
    # AF_UNIX: journald's stream, D-Bus for `systemctl is-active` and `timedatectl`, nscd for
    # NixOS name resolution. AF_INET/AF_INET6: the MCP and the reseller sinks, as a client only.
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
    ];
    # The agent listens on nothing: binding any port is refused by the kernel.
    SocketBindDeny = "any";
  };

  # `compliance-agent egress-refresh`: resolves allowedHosts and replaces the nftables set
  # elements. nft needs CAP_NET_ADMIN in the host's network namespace, so no PrivateUsers
  # (capabilities inside a user namespace do not reach the host's netfilter).
  egressRefresh = unprivileged // {
    CapabilityBoundingSet = "CAP_NET_ADMIN";
    AmbientCapabilities = "CAP_NET_ADMIN";
    RestrictAddressFamilies = [
      "AF_UNIX"
      "AF_INET"
      "AF_INET6"
      "AF_NETLINK"
    ];
    SocketBindDeny = "any";
  };

  # A second, per-unit egress filter (cgroup BPF) for when the MCP's addresses are known: the
  # agent may then reach only loopback, these addresses and the DNS resolvers.
  ipAddressAllow = addresses: {
    IPAddressDeny = "any";
    IPAddressAllow = [ "localhost" ] ++ addresses;
  };
}
