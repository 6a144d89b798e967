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
        compliance-agent = (pkgs.callPackage ./packages/compliance-agent { }).overrideAttrs (prev: {
          passthru = prev.passthru or { } // {
            tests.vm = self.checks.${pkgs.stdenv.hostPlatform.system}.vm-test;
          };
        });
        compliance-agent-demo = pkgs.callPackage ./packages/compliance-agent/demo.nix {
          inherit compliance-agent;
        };
        default = compliance-agent;
      });

      # `pkgs.compliance-agent`, the module's default package (mkPackageOption).
      overlays.default = final: _prev: {
        compliance-agent = final.callPackage ./packages/compliance-agent { };
      };

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

      # `nix flake new -t <this flake>#site DIR`: a clinic's site flake (examples/site-flake).
      templates.site = {
        path = ./examples/site-flake;
        description = "A clinic appliance's site flake with compliance-agent and sops-nix";
        welcomeText = ''
          Create secrets/front-desk-1.yaml with sops (keys compliance-agent/client.pem,
          compliance-agent/client.key, compliance-agent/evidence.key,
          compliance-agent/webhook-secret, compliance-agent/nix-access-tokens) and replace the
          example CA certificates before `nix flake check`.
        '';
      };

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
            pkgs.cryptsetup
            pkgs.nixfmt-tree
          ];
        };
      });

      # `nix fmt`: nixfmt (RFC 166 style, nixpkgs' own) over every .nix file; checks.formatting
      # fails on any file it would change.
      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);
    };
}
