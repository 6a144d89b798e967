{
  description = "compliance-agent: declarative, self-healing compliance agent for NixOS appliances";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        compliance-agent = pkgs.callPackage ./packages/compliance-agent { };
        compliance-agent-demo = pkgs.callPackage ./packages/compliance-agent/demo.nix {
          inherit compliance-agent;
        };
        default = compliance-agent;
      });

      nixosModules = {
        compliance-agent =
          { pkgs, ... }:
          {
            imports = [ ./modules/compliance-agent.nix ];
            services.compliance-agent.package =
              lib.mkDefault
                self.packages.${pkgs.stdenv.hostPlatform.system}.compliance-agent;
          };
        default = self.nixosModules.compliance-agent;
      };

      checks = forAllSystems (pkgs: import ./checks { inherit pkgs self nixpkgs; });

      apps = forAllSystems (pkgs: {
        demo = {
          type = "app";
          program = lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.compliance-agent-demo;
          meta.description = "A simulated clinic appliance against the reference MCP over mTLS";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs
            pkgs.python3
            pkgs.openssl
            pkgs.nftables
            pkgs.iproute2
            pkgs.util-linux
            pkgs.rsyslog
            pkgs.systemd
            pkgs.jq
            pkgs.nixfmt-tree
          ];
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);
    };
}
