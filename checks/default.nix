# `nix flake check`: the agent's unit tests (the package's check phase), the pure helpers, the
# examples evaluated as NixOS systems and their config.json validated by the agent itself, the
# nftables rulesets built (nixpkgs runs `nft --check` on them), the module's assertions, the
# runtime closure, the formatting of every .nix file, the exposure score of the unit NixOS
# actually renders, and the VM test. What each needs is listed in the README ("Checks").
{
  pkgs,
  self,
  nixpkgs,
}:
let
  inherit (pkgs) lib;
  system = pkgs.stdenv.hostPlatform.system;
  packages = self.packages.${system};
  agent = packages.compliance-agent;
  agentLib = "${agent}/lib/node_modules/compliance-agent/dist/src";
  hardening = import ../modules/lib/hardening.nix;
  egress = import ../modules/lib/egress.nix;

  # The examples declare their secrets for sops-nix and agenix, which this flake does not
  # depend on: stand-ins with those modules' option names, types and default paths.
  secretManagers =
    { lib, ... }:
    let
      inherit (lib) mkOption types;
      secrets =
        dir: extra:
        mkOption {
          default = { };
          type = types.attrsOf (
            types.submodule (
              { name, ... }:
              {
                options = {
                  path = mkOption {
                    type = types.str;
                    default = "${dir}/${name}";
                  };
                  mode = mkOption {
                    type = types.str;
                    default = "0400";
                  };
                  owner = mkOption {
                    type = types.str;
                    default = "root";
                  };
                } // extra;
              }
            )
          );
        };
    in
    {
      options.sops.secrets = secrets "/run/secrets" {
        restartUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
      };
      options.age.secrets = secrets "/run/agenix" { file = mkOption { type = types.path; }; };
    };

  baseModules = [
    self.nixosModules.default
    secretManagers
    {
      nixpkgs.hostPlatform = system;
      fileSystems."/".device = "/dev/disk/by-label/nixos";
      boot.loader.grub.enable = false;
      system.stateVersion = "26.05";
    }
  ];
  evaluate = modules: nixpkgs.lib.nixosSystem { modules = baseModules ++ modules; };

  failedAssertions =
    evaluated: map (a: a.message) (lib.filter (a: !a.assertion) evaluated.config.assertions);

  # An example evaluated as a NixOS system; a failed assertion of any module fails the check.
  exampleSystem =
    module:
    let
      evaluated = evaluate [ module ];
      failed = failedAssertions evaluated;
    in
    if failed == [ ] then evaluated.config else throw (lib.concatLines failed);

  # What the module must refuse, each with the assertion message it must give.
  refusals = {
    nftables-off = {
      modules = [
        ../examples/direct-config.nix
        { networking.nftables.enable = lib.mkForce false; }
      ];
      message =
        (egress.nftablesAssertion {
          egressEnable = true;
          nftablesEnable = false;
        }).message;
    };
    reseller-sinks-by-name = {
      modules = [
        ../examples/reseller-config.nix
        { services.compliance-agent.egress.agentAddressAllow = [ "203.0.113.10" ]; }
      ];
      message = "services.compliance-agent.egress.agentAddressAllow: in reseller mode the agent also sends to rmm.msp-alpha.example and siem.msp-alpha.example, given by name; the unit's IPAddressAllow= would block them without a word. Give rmmWebhookUrl and syslogTarget by IP address, or leave egress.agentAddressAllow empty (the nftables allowlist still holds the agent to allowedHosts).";
    };
  };
  refusalsChecked = lib.mapAttrs (
    name: r:
    let
      failed = failedAssertions (evaluate r.modules);
    in
    if lib.elem r.message failed then
      "refused: ${r.message}"
    else
      throw "module-assertions: ${name} was not refused with the expected message; failed assertions: ${builtins.toJSON failed}"
  ) refusals;

  # Without nftables the module still evaluates, with no table and no egress units.
  withoutEgress = (
    evaluate [
      ../examples/direct-config.nix
      {
        networking.nftables.enable = lib.mkForce false;
        services.compliance-agent.egress.enable = false;
      }
    ]
  ).config;

  examples = {
    reseller = exampleSystem ../examples/reseller-config.nix;
    direct = exampleSystem ../examples/direct-config.nix;
  };

  # The agent's own schemas, so the module cannot drift from ConfigSchema and BaselineSchema.
  # parseConfig, not loadConfig: the secrets the latter opens exist only on the appliance.
  validate = pkgs.writeText "validate-config.mjs" ''
    import { readFileSync } from 'node:fs';
    const { parseConfig, loadBaseline } = await import('${agentLib}/config/index.js');
    const config = parseConfig(JSON.parse(readFileSync(process.argv[2], 'utf8')), process.argv[2]);
    loadBaseline(process.argv[3]);
    console.log(`config ok: site ''${config.siteId}, ''${config.deploymentMode} mode`);
  '';
in
{
  # Its check phase runs the unit tests that need no root.
  package = agent;
  demo = packages.compliance-agent-demo;

  # Evaluating render.nix runs the helpers' self-checks; the output is what CI's vitest suite
  # feeds to nft and systemd-analyze.
  pure-helpers = pkgs.writeText "compliance-agent-pure-helpers.json" (
    builtins.toJSON (import ./render.nix { })
  );

  examples = pkgs.runCommand "compliance-agent-examples" { nativeBuildInputs = [ pkgs.nodejs ]; } (
    lib.concatLines (
      lib.mapAttrsToList (name: cfg: ''
        echo ${name}:
        node ${validate} \
          ${cfg.environment.etc."compliance-agent/config.json".source} \
          ${cfg.services.compliance-agent.baselinePath}
      '') examples
    )
    + ''
      touch $out
    ''
  );

  # Building nftables.service builds its ruleset script, whose check phase is nixpkgs' own
  # `nft --check` (networking.nftables.checkRuleset): the agent scope (direct) and the
  # appliance scope (reseller), each with the NixOS firewall's table beside it.
  nftables-ruleset = pkgs.linkFarm "compliance-agent-nftables-ruleset" (
    lib.mapAttrs (_: cfg: cfg.systemd.units."nftables.service".unit) examples
  );

  # Evaluation only: the refusals above, and the module without the allowlist.
  module-assertions =
    assert !(withoutEgress.networking.nftables.tables ? compliance_agent);
    assert !(withoutEgress.systemd.services ? compliance-agent-egress);
    assert withoutEgress.systemd.services ? compliance-agent-disks;
    pkgs.writeText "compliance-agent-module-assertions.json" (builtins.toJSON refusalsChecked);

  # The agent's runtime closure: its size, and no file that names the nodejs source tree or the
  # python node-gyp ran with (the package's disallowedRequisites/References guard the same).
  closure =
    pkgs.runCommand "compliance-agent-closure"
      {
        closureInfo = pkgs.closureInfo { rootPaths = [ agent ]; };
        # Names only: the check must not build what it looks for.
        forbidden = map builtins.unsafeDiscardStringContext [
          "${pkgs.srcOnly pkgs.nodejs}"
          "${pkgs.nodejs.python}"
        ];
      }
      ''
        for path in $forbidden; do
          if grep -rlF "$path" ${agent}; then
            echo "the files above name $path" >&2
            exit 1
          fi
        done
        size=$(cat $closureInfo/total-nar-size)
        echo "runtime closure: $(wc -l < $closureInfo/store-paths) store paths, $size bytes" | tee $out
        sort $closureInfo/store-paths >> $out
      '';

  # Every .nix file as the flake's formatter (nixfmt, RFC style) leaves it.
  formatting =
    pkgs.runCommand "compliance-agent-formatting"
      {
        nativeBuildInputs = [ pkgs.nixfmt ];
        src = lib.fileset.toSource {
          root = ../.;
          fileset = lib.fileset.fileFilter (f: f.hasExt "nix") ../.;
        };
      }
      ''
        cd $src
        find . -name '*.nix' -print0 | xargs -0 nixfmt --check
        touch $out
      '';

  # systemd-analyze on the unit file NixOS renders from the module (not a re-rendering of it).
  unit-exposure =
    pkgs.runCommand "compliance-agent-unit-exposure"
      {
        nativeBuildInputs = [ pkgs.systemd ];
        unit = examples.reseller.systemd.units."compliance-agent.service".unit;
        disks = examples.reseller.systemd.units."compliance-agent-disks.service".unit;
      }
      ''
        # --threshold counts tenths: 1.2 -> 12.
        threshold=${lib.replaceStrings [ "." ] [ "" ] hardening.exposureTarget}
        systemd-analyze security --offline=true "$unit/compliance-agent.service" | tee $out
        systemd-analyze security --offline=true --threshold=$threshold "$unit/compliance-agent.service" > /dev/null
        # The root snapshot unit, for the record.
        systemd-analyze security --offline=true "$disks/compliance-agent-disks.service" | tail -1 | tee -a $out
      '';

  vm-test = pkgs.testers.runNixOSTest (
    import ../nixosTests/compliance-agent.nix {
      inherit lib pkgs;
      inherit (packages) compliance-agent compliance-agent-demo;
    }
  );
}
