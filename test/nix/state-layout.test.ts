import { describe, expect, it } from 'vitest';
import { dirname } from 'node:path';
import { ConfigSchema } from '../../src/config/index.js';
import { healLayout, stateLayout } from '../../src/state/index.js';
import { nixEval } from './nix.js';

interface LayoutRendered {
  agentUnit: string;
  heal: { path: string; tmpfiles: string[] };
  config: Record<string, unknown> & { stateDir: string; healDir: string };
}

// The module's own rendering of the units and config.json, with the sample options.
const rendered = nixEval<LayoutRendered>('checks/pure-helpers.nix');

describe('the NixOS module and src/state/layout.ts name the same files', () => {
  it('config.json gives the same state directory and healer tree as the agent defaults to', () => {
    const { stateDir, healDir, ...rest } = rendered.config;
    const defaults = ConfigSchema.parse(rest);
    expect([stateDir, healDir]).toEqual([defaults.stateDir, defaults.healDir]);
  });

  it("the agent unit's ExecStopPost= writes the file the agent reads as previousExit", () => {
    const stopPost = /\nExecStopPost=(.*)\n/.exec(rendered.agentUnit)?.[1];
    const target = /> (\S+)'$/.exec(stopPost ?? '')?.[1];
    expect(target).toBe(stateLayout(rendered.config.stateDir).previousExit);
  });

  it("systemd-tmpfiles creates exactly the healer's directories, and the path unit watches its drop box", () => {
    const layout = healLayout(rendered.config.healDir);
    const dirs = rendered.heal.tmpfiles.map((l) => l.split(' ')[1]);
    expect(dirs.sort()).toEqual([layout.root, layout.state, layout.requests, layout.results].sort());
    expect(dirname(layout.healerDb)).toBe(layout.state);
    expect(rendered.heal.path).toContain(`\nPathChanged=${layout.requests}\n`);
  });
});
