# NixOS VM test: an appliance running the module against a fake MCP node.
#
#   nix build .#checks.x86_64-linux.vm-test        (or: nix run .#checks.x86_64-linux.vm-test.driverInteractive)
#
# Covers the seven points an MSP checks on an appliance (no listening sockets, egress enforced, secrets 0600 with
# the right owner, time skew detected, state dir 0700, hardening applied, logs in the journal),
# the encryption check on a real LUKS2 volume seen through the root disk snapshot, metrics read
# through node_exporter's textfile collector, one signed heal order end to end: stopped unit ->
# drift evidence -> signed heal order -> heal request -> root healer restarts the unit ->
# `healed` evidence at the MCP, and the agent user planting symlink attacks on the healer's drop
# box. A closure order (apply_closure) is applied from a local binary cache signed with the
# committed snakeoil cache key, and refused while the cache holds it signed by another key only.
# A second appliance (`enrolled`) starts with only a one-time token and the CA file, enrolls, and
# runs its cycles over the certificate the MCP issued. The agent unit's exposure score on this
# systemd is written to $out/exposure.txt.
{
  lib,
  pkgs,
  compliance-agent,
  compliance-agent-demo,
}:
let
  # Committed snakeoil keys (snakeoil/README.md). The appliance still receives its key the
  # production way, as a root-only file outside the store.
  applianceKey = ./snakeoil/appliance-vm-test.key;
  appliancePub = ./snakeoil/appliance-vm-test.pub;
  mspKey = ./snakeoil/msp-vm-test.key;
  secrets = "/run/secrets/compliance-agent";

  healOrder = pkgs.writeText "heal-order.json" (
    builtins.toJSON {
      site_id = "clinic-001";
      host_id = "appliance";
      sequence = 1;
      policy_version = "1.0";
      type = "heal";
      params.checks = [ "services" ];
    }
  );

  # The appliance's baseline revision, and the revision of the system a closure order installs.
  baselineRev = "5e1f0c2a9b3d47e68f0a1b2c3d4e5f6071829304";
  nextRev = "7c2d9e4f1a0b38c56d7e8f9a0b1c2d3e4f5a6b7c";
  closureCache = "/var/lib/closure-cache";
  baseline = {
    version = 1;
    patching = {
      configurationRevision = baselineRev;
      flakeRef = "git+https://git.example.invalid/sites?rev=${baselineRev}#appliance";
    };
    services.required = [ "clinic-app.service" ];
    backup = {
      unit = "clinic-backup.service";
      stampFile = "/var/lib/clinic-backup/last-success";
      maxAgeHours = 26;
    };
    firewall.rulesetHash = "sha256:${lib.fixedWidthString 64 "0" ""}";
    encryption.requiredMounts = [ ];
  };
  closureOrder =
    storePath:
    pkgs.writeText "closure-order.json" (
      builtins.toJSON {
        site_id = "clinic-001";
        host_id = "appliance";
        policy_version = "1.0";
        type = "apply_closure";
        params = {
          inherit storePath;
          revision = nextRev;
        };
      }
    );
in
rec {
  name = "compliance-agent";

  nodes.mcp =
    { pkgs, nodes, ... }:
    {
      # The system a closure order installs: valid in this store only, copied into a binary cache
      # by the test script (the appliance has to substitute it).
      virtualisation.additionalPaths = [ nodes.applianceNext.system.build.toplevel ];
      environment.systemPackages = [
        compliance-agent
        pkgs.jq
      ];
      networking.firewall = {
        allowedTCPPorts = [
          443
          8080
        ];
        allowedUDPPorts = [ 123 ];
      };

      systemd.services.fake-mcp = {
        description = "fake MCP (reference MCP from testing/)";
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          ExecStart = lib.concatStringsSep " " [
            (lib.getExe' compliance-agent-demo "compliance-agent-fake-mcp")
            "--dir /var/lib/fake-mcp"
            "--server-name mcp"
            "--client-cn appliance"
            "--agent-key ${appliancePub}"
            "--enroll-site clinic-001"
            "--port 443"
          ];
          StateDirectory = "fake-mcp";
        };
      };

      # Something listening that the allowlist must not let the appliance reach.
      systemd.services.other-port = {
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${lib.getExe pkgs.python3} -m http.server 8080";
      };

      # The appliance's NTP server.
      services.chrony = {
        enable = true;
        servers = [ ];
        extraConfig = ''
          local stratum 8
          allow all
        '';
      };
    };

  nodes.appliance =
    { pkgs, ... }:
    {
      imports = [ ../modules/compliance-agent.nix ];

      services.compliance-agent = {
        enable = true;
        package = compliance-agent;
        siteId = "clinic-001";
        hostId = "appliance";
        deploymentMode = "direct";
        mcpUrl = "https://mcp";
        allowedHosts = [ "mcp" ];
        caFile = "${secrets}/ca.pem";
        clientCertFile = "${secrets}/client.pem";
        clientKeyFile = "${secrets}/client.key";
        signingKeyFile = "${secrets}/evidence.key";
        trustedOrderKeys = [ (lib.fileContents ./snakeoil/msp-vm-test.pub) ];
        pollInterval = 5;
        heartbeatInterval = 60;
        allowDisruptiveOutsideWindow = true;
        # Names come from /etc/hosts in the test network; there is no DNS server.
        egress.resolvers = [ ];
        # chrony's server line is in extraConfig (below), which the default does not read.
        egress.timeServers = [ "mcp" ];
        # Every cycle checks afresh: the test swaps the encrypted volume for a plain one and jumps
        # the clock without a switch, and waits less than the default reuse intervals.
        stableCheckInterval = 0;
        timeCheckInterval = 0;
        closureSubstituters = [ "file://${closureCache}" ];
        closureTrustedPublicKeys = [ (lib.fileContents ./snakeoil/cache-vm-test.pub) ];
        # A LUKS2 volume the test script formats and mounts (virtualisation.emptyDiskImages).
        baseline = baseline // {
          encryption.requiredMounts = [ "/srv/clinic-data" ];
        };
      };

      system.configurationRevision = lib.mkDefault baselineRev;

      # Started by the test once its secrets are in place, as sops-nix would have them at boot.
      systemd.services.compliance-agent.wantedBy = lib.mkForce [ ];

      systemd.services.clinic-app = {
        description = "the clinic's application the baseline requires";
        wantedBy = [ "multi-user.target" ];
        serviceConfig.ExecStart = "${pkgs.coreutils}/bin/sleep infinity";
      };

      networking.nftables.enable = true;

      # chrony's serverOption takes only "iburst" or "offline": the server line with fast polling
      # (every second) goes in extraConfig, so the +60 s jump is measured within the test's wait.
      services.chrony = {
        enable = true;
        servers = [ ];
        extraConfig = ''
          server mcp iburst minpoll 0 maxpoll 0
        '';
      };

      # vdb: the LUKS2 volume; vdc: a plain one that replaces it to show drift.
      virtualisation.emptyDiskImages = [
        64
        64
      ];
      boot.kernelModules = [ "dm_crypt" ];

      environment.systemPackages = [
        pkgs.netcat
        pkgs.acl
        pkgs.jq
        pkgs.curl
        pkgs.cryptsetup
      ];

      # The module points its textfile collector at the agent's metrics directory.
      services.prometheus.exporters.node = {
        enable = true;
        listenAddress = "127.0.0.1";
      };
    };

  # Never started: the same appliance at another revision, the target of the closure order.
  nodes.applianceNext = {
    imports = [ nodes.appliance ];
    system.configurationRevision = nextRev;
    networking.hostName = lib.mkForce "appliance";
  };

  # Zero-touch: no key, no certificate, only the one-time token and the CA file.
  nodes.enrolled =
    { pkgs, ... }:
    {
      imports = [ ../modules/compliance-agent.nix ];
      environment.systemPackages = [ pkgs.openssl ];
      services.compliance-agent = {
        enable = true;
        package = compliance-agent;
        siteId = "clinic-001";
        hostId = "enrolled";
        deploymentMode = "direct";
        mcpUrl = "https://mcp";
        allowedHosts = [ "mcp" ];
        caFile = "${secrets}/ca.pem";
        enrollment.tokenFile = "${secrets}/enrollment-token";
        trustedOrderKeys = [ (lib.fileContents ./snakeoil/msp-vm-test.pub) ];
        pollInterval = 5;
        egress.resolvers = [ ];
        inherit baseline;
      };
      # Started by the test once the token is in place, as sops-nix would have it at boot.
      systemd.services.compliance-agent.wantedBy = lib.mkForce [ ];
      networking.nftables.enable = true;
    };

  testScript =
    { nodes, ... }:
    ''
    import json
    import os

    out_dir = os.environ.get("out", os.getcwd())

    mcp.start()
    appliance.start()
    mcp.wait_for_unit("fake-mcp.service")
    mcp.wait_for_open_port(443)
    mcp.wait_for_open_port(8080)

    with subtest("a LUKS2 volume at /srv/clinic-data, in the root disk snapshot"):
        appliance.succeed(
            "echo -n vm-test-passphrase > /root/luks.key",
            "cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000"
            " --key-file /root/luks.key /dev/vdb",
            "cryptsetup open --key-file /root/luks.key /dev/vdb clinic-data",
            "mkfs.ext4 -q /dev/mapper/clinic-data",
            "mkdir -p /srv/clinic-data && mount /dev/mapper/clinic-data /srv/clinic-data",
            "systemctl start compliance-agent-disks.service",
        )
        snapshot = json.loads(appliance.succeed("cat /run/compliance-agent-disks/disks.json"))
        assert "LUKS2" in snapshot["cryptsetup"]["clinic-data"]["output"], snapshot
        assert appliance.succeed("stat -c '%a %U %G' /run/compliance-agent-disks/disks.json").strip() == "640 root compliance-agent"

    with subtest("provision the secrets as root-only files, the way sops-nix or agenix do"):
        appliance.succeed("install -d -m 0700 ${secrets}")
        for name in ["ca.pem", "client.pem", "client.key"]:
            mcp.copy_from_vm(f"/var/lib/fake-mcp/pki/{name}", "pki")
            appliance.copy_from_host(os.path.join(out_dir, "pki", name), f"${secrets}/{name}")
        appliance.succeed("chown root:root ${secrets}/* && chmod 0600 ${secrets}/*")
        appliance.succeed("install -m 0600 -o root -g root ${applianceKey} ${secrets}/evidence.key")
        appliance.succeed("systemctl start compliance-agent.service")
        appliance.wait_for_unit("compliance-agent.service")

    with subtest("logs in the journal"):
        appliance.wait_until_succeeds(
            "journalctl -u compliance-agent.service -o cat | grep -F '\"msg\":\"cycle complete\"'", timeout=120
        )
        # No key material in any log: the base64 body of the client key never appears.
        appliance.fail("journalctl -o cat | grep -F \"$(sed -n 2p ${secrets}/client.key)\"")

    with subtest("metrics outside the state directory, read by node_exporter's textfile collector"):
        assert appliance.succeed("stat -c '%a %U' /run/compliance-agent-metrics").strip() == "755 compliance-agent"
        appliance.wait_until_succeeds("test -f /run/compliance-agent-metrics/compliance-agent.prom", timeout=60)
        assert appliance.succeed("stat -c %a /run/compliance-agent-metrics/compliance-agent.prom").strip() == "644"
        appliance.wait_for_unit("prometheus-node-exporter.service")
        appliance.wait_for_open_port(9100)
        appliance.wait_until_succeeds(
            "curl -sf http://127.0.0.1:9100/metrics | grep -E '^compliance_agent_cycles_total [1-9]'", timeout=60
        )
        appliance.succeed("curl -sf http://127.0.0.1:9100/metrics | grep -F 'compliance_agent_delivery_failing{destination=\"mcp\"} 0'")
        # The textfile collector reports no read error for the directory.
        appliance.fail("curl -sf http://127.0.0.1:9100/metrics | grep -E '^node_textfile_scrape_error [1-9]'")
        # The operator's view of delivery, as the README has it.
        appliance.succeed(
            "runuser -u compliance-agent -- compliance-agent dead-letters list --config /etc/compliance-agent/config.json"
            " | grep -Fx 'no dead letters'"
        )

    with subtest("state directory 0700, owned by the agent's own user"):
        assert appliance.succeed("stat -c '%a %U %G' /var/lib/compliance-agent").strip() == "700 compliance-agent compliance-agent"

    pid = appliance.succeed("systemctl show -P MainPID compliance-agent.service").strip()
    agent_uid = appliance.succeed("id -u compliance-agent").strip()

    with subtest("no listening socket, no capability, in any process of the unit"):
        cgroup = appliance.succeed("systemctl show -P ControlGroup compliance-agent.service").strip()
        pids = appliance.succeed(f"cat /sys/fs/cgroup{cgroup}/cgroup.procs").split()
        assert pid in pids, (pid, pids)
        listening = appliance.succeed("ss -Hlnpe")
        for p in pids:
            assert f"pid={p}," not in listening, f"process {p} of the agent unit listens: {listening}"
            for line in appliance.succeed(f"grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/{p}/status").splitlines():
                assert line.split()[1] == "0000000000000000", (p, line)
            assert appliance.succeed(f"stat -c %U /proc/{p}").strip() == "compliance-agent"
        assert f"uid:{agent_uid} " not in listening, f"a socket of the agent's user listens: {listening}"

    with subtest("secrets root-only at the source, readable only by the agent in its credentials"):
        for name in ["client.key", "evidence.key"]:
            appliance.fail(f"setpriv --reuid=compliance-agent --regid=compliance-agent --clear-groups cat ${secrets}/{name}")
        creds = "/run/credentials/compliance-agent.service"
        enter = f"nsenter --target {pid} --mount --"
        for name in ["client-key.pem", "evidence-signing.key"]:
            # systemd writes each credential 0400 root with an ACL entry for the service user, or,
            # where the file system has no ACLs, owned by the service user: either way nobody else.
            owner, mode = appliance.succeed(f"{enter} stat -c '%U %a' {creds}/{name}").split()
            acl = appliance.succeed(f"{enter} getfacl --omit-header --numeric {creds}/{name}").split()
            named = [e for e in acl if e.startswith(("user:", "group:")) and e.split(":")[1] != ""]
            if owner == "root":
                assert mode in ("400", "440"), (name, owner, mode)
                assert named == [f"user:{agent_uid}:r--"], (name, acl)
            else:
                assert (owner, mode) == ("compliance-agent", "400"), (name, owner, mode)
                assert named == [], (name, acl)
            appliance.succeed(f"{enter} setpriv --reuid=compliance-agent --regid=compliance-agent --clear-groups cat {creds}/{name} > /dev/null")
            appliance.fail(f"{enter} setpriv --reuid=nobody --regid=nogroup --clear-groups cat {creds}/{name}")
        # Nothing secret in the store-rendered config: only credential paths.
        config = json.loads(appliance.succeed("cat /etc/compliance-agent/config.json"))
        assert config["clientKeyFile"] == f"{creds}/client-key.pem", config["clientKeyFile"]

    with subtest("hardening applied"):
        show = appliance.succeed(
            "systemctl show compliance-agent.service -p User -p ProtectSystem -p NoNewPrivileges"
            " -p PrivateUsers -p CapabilityBoundingSet -p AmbientCapabilities -p SocketBindDeny"
        )
        for expected in ["User=compliance-agent", "ProtectSystem=strict", "NoNewPrivileges=yes",
                         "PrivateUsers=yes", "CapabilityBoundingSet=\n", "SocketBindDeny=any"]:
            assert expected in show + "\n", f"{expected!r} not in {show}"
        # Scored by this systemd on the live unit (the offline score in CI comes from an older one).
        exposure = appliance.succeed("systemd-analyze security --no-pager compliance-agent.service | tail -1").strip()
        print(exposure)
        with open(os.path.join(out_dir, "exposure.txt"), "w") as f:
            f.write(exposure + "\n")
        appliance.succeed("systemd-analyze security --threshold=12 compliance-agent.service")

    with subtest("egress allowlist enforced, logged, refilled after an nftables reload"):
        mcp_ip = appliance.succeed("getent ahostsv4 mcp | head -1 | cut -d' ' -f1").strip()
        appliance.wait_until_succeeds(f"nft list set inet compliance_agent allowed_v4 | grep -F {mcp_ip}", timeout=60)
        appliance.succeed("nc -z -w 5 mcp 443")
        appliance.fail("nc -z -w 5 mcp 8080")
        appliance.wait_until_succeeds("journalctl -k -o cat | grep -F 'compliance-agent egress drop: '", timeout=30)
        # The reload empties the sets; ReloadPropagatedFrom= refills them through the egress unit.
        appliance.succeed("systemctl reload nftables.service")
        appliance.wait_until_succeeds(f"nft list set inet compliance_agent allowed_v4 | grep -F {mcp_ip}", timeout=60)
        appliance.succeed("nc -z -w 5 mcp 443")
        appliance.succeed("systemctl is-active compliance-agent-egress.service")

    evidence = "/var/lib/fake-mcp/evidence/*.json"

    with subtest("encryption: the agent cannot see /dev/mapper, and reports the LUKS volume from the snapshot"):
        appliance.succeed(f"nsenter --target {pid} --mount -- test ! -e /dev/mapper/clinic-data")
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .check == \"encryption\" and .outcome == \"compliant\")' {evidence}", timeout=120
        )
        # The same path on a plain ext4 volume: drift, naming the device.
        appliance.succeed(
            "umount /srv/clinic-data && cryptsetup close clinic-data",
            "mkfs.ext4 -q /dev/vdc && mount /dev/vdc /srv/clinic-data",
            "systemctl start compliance-agent-disks.service",
        )
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .check == \"encryption\" and .outcome == \"drift_detected\")' {evidence}", timeout=120
        )

    with subtest("a signed heal order restarts a stopped unit, end to end"):
        mcp.wait_until_succeeds(f"jq -e -s 'any(.[]; .check == \"services\")' {evidence}", timeout=120)
        appliance.succeed("systemctl stop clinic-app.service")
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .check == \"services\" and .outcome == \"drift_detected\")' {evidence}", timeout=120
        )
        mcp.succeed(
            "compliance-agent order sign --key ${mspKey} --sequence-file /var/lib/fake-mcp/clinic-001.seq ${healOrder} > /var/lib/fake-mcp/orders/001.json.tmp"
            " && mv /var/lib/fake-mcp/orders/001.json.tmp /var/lib/fake-mcp/orders/001.json"
        )
        order_id = mcp.succeed("jq -r .payload /var/lib/fake-mcp/orders/001.json | base64 -d | jq -r .order_id").strip()
        appliance.wait_until_succeeds("systemctl is-active clinic-app.service", timeout=180)
        appliance.succeed("journalctl -u compliance-agent-heal.service -o cat | grep -F healed")
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .order_id == \"{order_id}\" and .outcome == \"healed\")' {evidence}", timeout=180
        )
        # The agent removes its answered request once the result's evidence is chained.
        appliance.wait_until_succeeds("test -z \"$(ls -A /var/lib/compliance-agent-heal/requests)\"", timeout=60)

    with subtest("as the agent user, symlink attacks on the healer leave /etc/shadow and the healer's state untouched"):
        heal = "/var/lib/compliance-agent-heal"
        as_agent = "setpriv --reuid=compliance-agent --regid=compliance-agent --clear-groups sh -c"
        def fingerprint():
            return appliance.succeed(
                f"sha256sum /etc/shadow {heal}/state/healer.db && stat -c '%n %i %a %U %G' /etc/shadow /etc {heal}/state {heal}/state/healer.db {heal}/requests {heal}/results"
                " && test ! -e /etc/profile.local"
            )
        # Out of reach: the state, the results, the drop box itself.
        appliance.fail(f"{as_agent} 'ls {heal}/state'")
        appliance.fail(f"{as_agent} 'ln -s /etc/shadow {heal}/results/x.json'")
        appliance.fail(f"{as_agent} 'mv {heal}/requests {heal}/r2'")
        appliance.succeed("systemctl start compliance-agent-heal.service")
        before = fingerprint()
        # Links at predictable temp names, the old spool replaced by a link to /etc, links and
        # odd names in the drop box: none is a request, none is opened.
        appliance.succeed(
            f"{as_agent} 'for p in $(seq 1 300); do ln -s /etc/profile.local {heal}/requests/.x.json.$p.tmp; done;"
            f" mkdir -p /var/lib/compliance-agent/heal && ln -sfn /etc /var/lib/compliance-agent/heal/requests;"
            f" ln -s /etc {heal}/requests/etc; ln -s {heal}/state {heal}/requests/state'"
        )
        appliance.succeed("systemctl start compliance-agent-heal.service")
        assert fingerprint() == before, "an ignored link changed /etc/shadow or the healer's state"
        # Request-named links to /etc/shadow and to the state: answered `rejected`, never followed.
        for target in ["/etc/shadow", f"{heal}/state/healer.db"]:
            appliance.succeed(f"{as_agent} 'ln -s {target} {heal}/requests/$(cat /proc/sys/kernel/random/uuid).json'")
        appliance.succeed("systemctl start compliance-agent-heal.service")
        after = fingerprint()
        assert after.splitlines()[0] == before.splitlines()[0], "/etc/shadow changed"
        assert after.splitlines()[2:] == before.splitlines()[2:], "an owner, mode or inode changed"
        appliance.succeed(f"test $(grep -l 'bad_request: not a regular file' {heal}/results/*.json | wc -l) -ge 2")
        appliance.fail("journalctl -u compliance-agent-heal.service -o cat | grep -F 'root:'")
        appliance.succeed(f"{as_agent} 'rm -f {heal}/requests/* {heal}/requests/.x.json.*'")

    with subtest("time skew beyond ntpMaxSkewMs is detected"):
        appliance.wait_until_succeeds("chronyc -c tracking | cut -d, -f1 | grep -v '^00000000$'", timeout=120)
        appliance.succeed("date -s '+60 seconds'")
        appliance.wait_until_succeeds(
            "compliance-agent check --config /etc/compliance-agent/config.json --only time --json"
            " | jq -e '.results[0].status == \"drift\" and (.results[0].summary | test(\"ahead of NTP time\"))'",
            timeout=120,
        )
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .check == \"time\" and .outcome == \"drift_detected\")' {evidence}", timeout=180
        )
        appliance.succeed("date -s '-60 seconds'")
        appliance.wait_until_succeeds(
            "compliance-agent check --config /etc/compliance-agent/config.json --only time --json | jq -e '.results[0].status == \"compliant\"'",
            timeout=180,
        )

    next_system = "${nodes.applianceNext.system.build.toplevel}"
    nix = "nix --extra-experimental-features nix-command"

    def publish_cache(key_file):
        mcp.succeed(f"{nix} store sign --store file:///tmp/closure-cache --key-file {key_file} --recursive {next_system}")
        mcp.succeed("tar -C /tmp -cf /tmp/closure-cache.tar closure-cache")
        mcp.copy_from_vm("/tmp/closure-cache.tar", "")
        appliance.copy_from_host(os.path.join(out_dir, "closure-cache.tar"), "/tmp/closure-cache.tar")
        # Unpacks to ${closureCache}, the appliance's only closureSubstituters entry.
        appliance.succeed("rm -rf ${closureCache} && tar -C /var/lib -xf /tmp/closure-cache.tar")

    def send_order(name):
        mcp.succeed(
            f"compliance-agent order sign --key ${mspKey} --sequence-file /var/lib/fake-mcp/clinic-001.seq ${closureOrder "${nodes.applianceNext.system.build.toplevel}"} > /var/lib/fake-mcp/orders/{name}.json.tmp"
            f" && mv /var/lib/fake-mcp/orders/{name}.json.tmp /var/lib/fake-mcp/orders/{name}.json"
        )
        return mcp.succeed(f"jq -r .payload /var/lib/fake-mcp/orders/{name}.json | base64 -d | jq -r .order_id").strip()

    with subtest("a closure order signed into the cache by another key is refused; nothing is substituted or activated"):
        appliance.fail(f"nix-store --check-validity {next_system}")
        mcp.succeed(f"{nix} copy --to file:///tmp/closure-cache {next_system}")
        publish_cache("${./snakeoil/cache-vm-other.secret}")
        order_id = send_order("010")
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .order_id == \"{order_id}\" and .outcome == \"rejected\" and (.reason | startswith(\"untrusted_closure\")))' {evidence}",
            timeout=180,
        )
        appliance.fail(f"nix-store --check-validity {next_system}")
        assert appliance.succeed("nixos-version --configuration-revision").strip() == "${baselineRev}"

    with subtest("the same closure signed by the trusted cache key is substituted, its revision checked, and activated"):
        publish_cache("${./snakeoil/cache-vm-test.secret}")
        order_id = send_order("011")
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .order_id == \"{order_id}\" and .outcome == \"healed\")' {evidence}", timeout=600
        )
        assert appliance.succeed("readlink -f /run/current-system").strip() == next_system
        assert appliance.succeed("nixos-version --configuration-revision").strip() == "${nextRev}"

    with subtest("an appliance with only a token and the CA enrolls, then runs its cycles over the issued certificate"):
        enrolled.start()
        enrolled.wait_for_unit("multi-user.target")
        enrolled.succeed("install -d -m 0700 ${secrets}")
        mcp.copy_from_vm("/var/lib/fake-mcp/enrollment-token", "enroll")
        enrolled.copy_from_host(os.path.join(out_dir, "pki", "ca.pem"), "${secrets}/ca.pem")
        enrolled.copy_from_host(os.path.join(out_dir, "enroll", "enrollment-token"), "${secrets}/enrollment-token")
        enrolled.succeed("chown root:root ${secrets}/* && chmod 0600 ${secrets}/*")
        enrolled.fail("test -e /var/lib/compliance-agent/identity")
        enrolled.succeed("systemctl start compliance-agent.service")
        enrolled.wait_for_unit("compliance-agent.service")
        enrolled.succeed("journalctl -u compliance-agent-enroll.service -o cat | grep -F 'enrolled clinic-001/enrolled at https://mcp'")
        # Sent once, then deleted; the keys were made here and stay here, the agent's own.
        enrolled.fail("test -e ${secrets}/enrollment-token")
        identity = "/var/lib/compliance-agent/identity"
        for name in ["client-key.pem", "evidence-signing.key"]:
            assert enrolled.succeed(f"stat -c '%a %U' {identity}/{name}").strip() == "600 compliance-agent"
        assert enrolled.succeed(f"stat -c '%a %U' {identity}").strip() == "700 compliance-agent"
        enrolled.succeed(f"openssl verify -CAfile ${secrets}/ca.pem -purpose sslclient {identity}/client-cert.pem")
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .host_id == \"enrolled\" and .check == \"enrollment\" and .seq == 1)' {evidence}", timeout=120
        )
        mcp.wait_until_succeeds(
            f"jq -e -s 'any(.[]; .host_id == \"enrolled\" and .check == \"services\")' {evidence}", timeout=120
        )
        enrolled.wait_until_succeeds(
            "journalctl -u compliance-agent.service -o cat | grep -F '\"msg\":\"cycle complete\"'", timeout=120
        )
        # A restart does not enroll again: there is a certificate, so the oneshot is skipped.
        enrolled.succeed("systemctl restart compliance-agent.service")
        enrolled.wait_for_unit("compliance-agent.service")
        assert enrolled.succeed("journalctl -u compliance-agent-enroll.service -o cat | grep -cF 'enrolled clinic-001'").strip() == "1"
        status = enrolled.succeed("setpriv --reuid=compliance-agent --regid=compliance-agent --clear-groups compliance-agent status --config /etc/compliance-agent/config.json")
        assert "identity:    ok, certificate" in status, status
  '';
}
