# A site flake template: one clinic appliance with compliance-agent, its secrets from sops-nix.
#
#   nix flake new -t github:msp-alpha/compliance-agent#site clinic-001
#
# It cannot be checked as it stands: create secrets/front-desk-1.yaml with sops (keys
# compliance-agent/client.pem, client.key, evidence.key, webhook-secret, nix-access-tokens),
# replace the example CA certificates and the hardware settings, then `nix flake check`
# evaluates the appliance (the module's assertions included) and builds it.
{
  description = "Clinic 001: front-desk appliance";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    # The MSP's copy of the compliance-agent repository.
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
          # Declares the sops secrets it reads, the CA files and networking.nftables.enable.
          "${compliance-agent}/examples/reseller-config.nix"
          {
            nixpkgs.hostPlatform = "x86_64-linux";
            networking.hostName = "front-desk-1";
            fileSystems."/".device = "/dev/disk/by-label/nixos";
            boot.loader.systemd-boot.enable = true;
            system.stateVersion = "26.05";

            sops.defaultSopsFile = ./secrets/front-desk-1.yaml;
          }
        ];
      };

      checks.x86_64-linux.front-desk-1 =
        self.nixosConfigurations.front-desk-1.config.system.build.toplevel;
    };
}
