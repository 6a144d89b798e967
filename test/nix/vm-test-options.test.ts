import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { run } from './nix.js';

/**
 * The VM test's nodes, evaluated without nixpkgs: their option values are read lazily, so only
 * what is asked for here is evaluated (lib and pkgs are empty stand-ins).
 */
function nodeOption(node: string, path: string): unknown {
  const expr = [
    'let t = import ./nixosTests/compliance-agent.nix { lib = { }; pkgs = { }; compliance-agent = { }; compliance-agent-demo = { }; };',
    `f = t.nodes.${node}; args = builtins.intersectAttrs (builtins.functionArgs f) { pkgs = { }; nodes = { }; config = { }; lib = { }; };`,
    `in (f args).${path}`,
  ].join(' ');
  return JSON.parse(run('nix-instantiate', ['--eval', '--strict', '--json', '--expr', expr]));
}

/**
 * services.chrony as nixos/modules/services/networking/ntp/chrony.nix declares it: the option
 * names and types (serverOption is `types.enum [ "iburst" "offline" ]`, servers
 * `listOf str`, extraConfig `lines`). A definition outside them fails NixOS evaluation.
 */
const ChronyOptions = z
  .object({
    enable: z.boolean(),
    package: z.unknown(),
    servers: z.array(z.string()),
    serverOption: z.enum(['iburst', 'offline']),
    enableMemoryLocking: z.boolean(),
    enableRTCTrimming: z.boolean(),
    autotrimThreshold: z.number(),
    enableNTS: z.boolean(),
    initstepslew: z.object({ enabled: z.boolean(), threshold: z.number() }).partial().strict(),
    directory: z.string(),
    extraConfig: z.string(),
    extraFlags: z.array(z.string()),
  })
  .partial()
  .strict();

describe('the VM test nodes against the option types of the NixOS modules they set', () => {
  for (const node of ['appliance', 'mcp']) {
    it(`${node}: services.chrony has chrony.nix's option names and types`, () => {
      const chrony = ChronyOptions.safeParse(nodeOption(node, 'services.chrony'));
      expect(chrony.success ? [] : chrony.error.issues).toEqual([]);
    });
  }

  it('the appliance polls the MCP every second (the +60 s jump is measured within the wait)', () => {
    const chrony = ChronyOptions.parse(nodeOption('appliance', 'services.chrony'));
    expect(chrony.servers).toEqual([]);
    expect(chrony.extraConfig?.split('\n')).toContain('server mcp iburst minpoll 0 maxpoll 0');
  });

  it("the egress allowlist lets NTP through to chrony's server, which extraConfig names", () => {
    const chrony = ChronyOptions.parse(nodeOption('appliance', 'services.chrony'));
    const servers = [...(chrony.extraConfig ?? '').matchAll(/^server (\S+)/gm)].map((m) => m[1]);
    expect(servers).toEqual(['mcp']);
    expect(nodeOption('appliance', 'services.compliance-agent.egress.timeServers')).toEqual(servers);
  });

  it('the appliance runs nftables, which the egress allowlist requires', () => {
    expect(nodeOption('appliance', 'networking.nftables.enable')).toBe(true);
  });

  it('the stand-in rejects what chrony.nix rejects', () => {
    const bad = ChronyOptions.safeParse({ servers: ['mcp'], serverOption: 'iburst minpoll 0 maxpoll 0' });
    expect(bad.success).toBe(false);
  });
});
