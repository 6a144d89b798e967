# `nix flake check`: the agent's unit tests (the package's check phase), the pure helpers, the
# examples evaluated as NixOS systems and their config.json validated by the agent itself, the
# exposure score of the unit NixOS actually renders, and the VM test.
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

  # An example evaluated as a NixOS system; a failed assertion of any module fails the check.
  exampleSystem =
    module:
    let
      evaluated = nixpkgs.lib.nixosSystem {
        modules = [
          self.nixosModules.default
          module
          {
            nixpkgs.hostPlatform = system;
            fileSystems."/".device = "/dev/disk/by-label/nixos";
            boot.loader.grub.enable = false;
            system.stateVersion = "26.05";
          }
        ];
      };
      failed = map (a: a.message) (lib.filter (a: !a.assertion) evaluated.config.assertions);
    in
    if failed == [ ] then evaluated.config else throw (lib.concatLines failed);

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

  # systemd-analyze on the unit file NixOS renders from the module (not a re-rendering of it).
  unit-exposure =
    pkgs.runCommand "compliance-agent-unit-exposure"
      {
        nativeBuildInputs = [ pkgs.systemd ];
        unit = examples.reseller.systemd.units."compliance-agent.service".unit;
      }
      ''
        # --threshold counts tenths: 1.2 -> 12.
        threshold=${lib.replaceStrings [ "." ] [ "" ] hardening.exposureTarget}
        systemd-analyze security --offline=true "$unit/compliance-agent.service" | tee $out
        systemd-analyze security --offline=true --threshold=$threshold "$unit/compliance-agent.service" > /dev/null
      '';

  vm-test = pkgs.testers.runNixOSTest (
    import ../nixosTests/compliance-agent.nix {
      inherit lib pkgs;
      inherit (packages) compliance-agent compliance-agent-demo;
    }
  );
}
