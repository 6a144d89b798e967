import { createHash } from 'node:crypto';
import * as z from 'zod';
import { parseJsonText } from '../common/index.js';
import type { Check } from './types.js';
import { excerpt, runCommand } from './exec.js';
import { startResult } from './result.js';

const NixosVersion = z.object({
  nixosVersion: z.string().min(1),
  nixpkgsRevision: z.string().optional(),
  configurationRevision: z.string().optional(),
});

export const RUNNING_SYSTEM = '/run/current-system';
export const SYSTEM_PROFILE = '/nix/var/nix/profiles/system';
const STORE_PATH_RE = /^\/nix\/store\/[0-9a-df-np-sv-z]{32}-[A-Za-z0-9+._?=-]+$/;

/**
 * The running system's `configurationRevision` (the site flake's git revision) against the
 * baseline. Heals by building the pinned baseline flake and activating it, which restarts services: disruptive.
 */
export const patchingCheck: Check = {
  name: 'patching',
  controls: ['HIPAA 164.308(a)(1)(ii)(B)', 'HIPAA 164.308(a)(5)(ii)(B)', 'SOC 2 CC7.1', 'SOC 2 CC8.1'],
  heal: { kind: 'rebuild' },
  async run(ctx) {
    const expected = { configurationRevision: ctx.baseline.patching.configurationRevision, flakeRef: ctx.baseline.patching.flakeRef };
    const done = startResult('patching', ctx, expected);

    const version = await runCommand(ctx.host, 'nixos-version', ['--json']);
    if (!version.ok) return done('error', version.message);
    const json = parseJsonText(version.stdout);
    const parsed = NixosVersion.safeParse(json.ok ? json.value : undefined);
    if (!parsed.success) return done('error', `nixos-version --json printed no version JSON ("${excerpt(version.stdout)}")`);

    // Links are read as files: a process per link would cost the agent more CPU than the whole check.
    const storePath = await ctx.host.realpath(RUNNING_SYSTEM);
    if (storePath === null) return done('error', `${RUNNING_SYSTEM} does not resolve: no running NixOS system`);
    if (!STORE_PATH_RE.test(storePath)) return done('error', `${RUNNING_SYSTEM} resolves to ${excerpt(storePath)}, not a store path`);

    // The generation number is context for the auditor; the decision does not depend on it.
    const profile = await ctx.host.readlink(SYSTEM_PROFILE);
    const generationMatch = profile === null ? null : /^system-(\d+)-link$/.exec(profile);

    const { nixosVersion, nixpkgsRevision = null, configurationRevision = null } = parsed.data;
    const observed = {
      configurationRevision,
      nixosVersion,
      nixpkgsRevision,
      generation: generationMatch ? Number(generationMatch[1]) : null,
      storePath,
      derivationDigest: `sha256:${createHash('sha256').update(storePath).digest('hex')}`,
    };
    const where = `generation ${observed.generation ?? '?'}, NixOS ${nixosVersion}`;
    if (configurationRevision === null) {
      return done(
        'drift',
        `running system has no configurationRevision (built from an uncommitted tree?), baseline expects ${expected.configurationRevision} (${where})`,
        observed,
      );
    }
    if (configurationRevision !== expected.configurationRevision) {
      return done('drift', `running revision ${configurationRevision}, baseline expects ${expected.configurationRevision} (${where})`, observed);
    }
    return done('compliant', `running revision ${configurationRevision} as the baseline expects (${where})`, observed);
  },
};
