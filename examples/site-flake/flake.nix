# A minimal site flake: one clinic appliance with compliance-agent, its secrets from sops-nix.
# `nix flake check` here evaluates the appliance (the module's assertions included) and builds it.
{
  description = "Clinic 001: front-desk appliance";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    # The MSP's copy of this repository.
    compliance-agent = {
      url = "github:msp-alpha/compliance-agent";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    sops-nix = {
      url = "github:Mic92/sops-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      compliance-agent,
      sops-nix,
    }:
    {
      nixosConfigurations.front-desk-1 = nixpkgs.lib.nixosSystem {
        modules = [
          compliance-agent.nixosModules.default
          sops-nix.nixosModules.sops
          "${compliance-agent}/examples/reseller-config.nix"
          (
            { ... }:
            {
              nixpkgs.hostPlatform = "x86_64-linux";
              networking.hostName = "front-desk-1";
              fileSystems."/".device = "/dev/disk/by-label/nixos";
              boot.loader.systemd-boot.enable = true;
              system.stateVersion = "26.05";

              # Root-only files under /run/secrets, in place before services start; the agent
              # receives copies as systemd credentials, never these files.
              sops.defaultSopsFile = ./secrets/front-desk-1.yaml;
              sops.secrets = {
                "compliance-agent/client.pem" = { };
                "compliance-agent/client.key" = { };
                "compliance-agent/evidence.key" = { };
                "compliance-agent/webhook-secret" = { };
              };
            }
          )
        ];
      };

      checks.x86_64-linux.front-desk-1 =
        self.nixosConfigurations.front-desk-1.config.system.build.toplevel;
    };
}
