import * as z from 'zod';
import { STORE_PATH_RE, flakeSourceAllowed, parsePinnedFlakeRef, type Baseline, type Config } from '../config/index.js';
import type { ExecResult, Host } from '../host/index.js';
import { allowedFlakesFor } from '../orders/index.js';
import type { SwitchAction } from './actions.js';

/**
 * How the healer changes the running system, step by step, as nixos-rebuild does but with a check
 * between building and activating:
 *
 *   flake:   nix build (no switch) -> the toplevel's revision is the signed one -> activate it
 *   closure: nix-store --realise from the listed caches, signatures required -> same check -> activate
 *   activate: nix-env -p /nix/var/nix/profiles/system --set PATH; PATH/bin/switch-to-configuration switch
 *   back:    nix-env --switch-generation N (the generation recorded before the switch);
 *            /nix/var/nix/profiles/system-N-link/bin/switch-to-configuration switch
 *
 * `nix build` rather than `nixos-rebuild build`: it prints the exact store path, leaves no
 * ./result link, takes `--option accept-flake-config false`, and never re-executes a
 * nixos-rebuild from the flake being built (nixos-rebuild-ng re-execs itself from the new
 * nixpkgs), so nothing of the new system runs before its revision has been checked.
 */

const SYSTEM_PROFILE = '/nix/var/nix/profiles/system';
const PROFILE_STEP_MS = 120_000;
const QUERY_TIMEOUT_MS = 30_000;

export interface SwitchDeps {
  readonly host: Host;
  readonly config: Config;
  readonly baseline: Baseline;
  /** Runs and records one step (it becomes action_taken). */
  readonly exec: (command: string, args: readonly string[], timeoutMs: number) => Promise<ExecResult>;
  readonly describe: (command: string, args: readonly string[], r: ExecResult, timeoutMs: number) => string;
  /** Build or substitute, then activation. */
  readonly timeouts: { readonly buildMs: number; readonly activateMs: number };
}

/** Nothing was changed: the closure was not built, not trusted, or not what the order signed. */
export type Refusal = { readonly outcome: 'rejected' | 'failed'; readonly reason: string };
/** A step that may have changed the profile or the running system: the caller checks which. */
export type SwitchStep = { readonly result: ExecResult; readonly text: string } | { readonly refused: Refusal };

const nothing = 'nothing was activated';

async function step(d: SwitchDeps, command: string, args: readonly string[], timeoutMs: number): Promise<{ result: ExecResult; text: string }> {
  const result = await d.exec(command, args, timeoutMs);
  return { result, text: d.describe(command, args, result, timeoutMs) };
}

const VersionJson = z.object({ configurationRevision: z.string().optional() }).loose();

/**
 * The configurationRevision a system toplevel reports, read (never run) from the nixos-version
 * script nixpkgs puts in its `sw/bin`: the `--json` answer is a here-document in that script.
 */
async function closureRevision(host: Host, storePath: string): Promise<{ ok: true; revision: string | null } | { ok: false; message: string }> {
  const read = await host.readFile(`${storePath}/sw/bin/nixos-version`, 64 * 1024);
  if (!read.ok) return { ok: false, message: `${storePath} has no readable sw/bin/nixos-version (${read.code})` };
  const m = /--json\)\s*\n\s*cat <<'EOF'\n([^\n]*)\nEOF\n/.exec(read.text);
  if (!m) return { ok: false, message: `${storePath}/sw/bin/nixos-version holds no --json answer` };
  try {
    const parsed = VersionJson.safeParse(JSON.parse(m[1]!));
    if (!parsed.success) return { ok: false, message: `${storePath}/sw/bin/nixos-version: its --json answer is not an object` };
    return { ok: true, revision: parsed.data.configurationRevision ?? null };
  } catch {
    return { ok: false, message: `${storePath}/sw/bin/nixos-version: its --json answer is not JSON` };
  }
}

/** Check a store path is a NixOS system reporting `revision`, then make it the profile's new generation and activate it. */
async function verifyThenActivate(d: SwitchDeps, storePath: string, revision: string): Promise<SwitchStep> {
  if (!(await d.host.stat(`${storePath}/bin/switch-to-configuration`))) {
    return { refused: { outcome: 'rejected', reason: `not_a_system: ${storePath} has no bin/switch-to-configuration; ${nothing}` } };
  }
  const rev = await closureRevision(d.host, storePath);
  if (!rev.ok) return { refused: { outcome: 'rejected', reason: `revision_unknown: ${rev.message}; ${nothing}` } };
  if (rev.revision !== revision) {
    return {
      refused: {
        outcome: 'rejected',
        reason: `revision_mismatch: ${storePath} reports configurationRevision ${rev.revision ?? '(none)'}, the order signed ${revision}; ${nothing}`,
      },
    };
  }
  const set = await step(d, 'nix-env', ['-p', SYSTEM_PROFILE, '--set', storePath], PROFILE_STEP_MS);
  if (set.result.status !== 'ok') return set;
  return step(d, `${storePath}/bin/switch-to-configuration`, ['switch'], d.timeouts.activateMs);
}

/** Build a pinned flake's system toplevel without switching, then verify and activate exactly what was built. */
async function switchToFlake(d: SwitchDeps, flakeRef: string): Promise<SwitchStep> {
  const ref = parsePinnedFlakeRef(flakeRef);
  // Re-checked here whatever the plan said: pinned, and from an allowed repository or the baseline's own reference.
  if (!ref.ok) return { refused: { outcome: 'rejected', reason: `flake_not_pinned: flakeRef ${ref.message}; ${nothing}` } };
  const allowed = flakeRef === d.baseline.patching.flakeRef || flakeSourceAllowed(ref.value.source, allowedFlakesFor(d.config, d.baseline));
  if (!allowed) return { refused: { outcome: 'rejected', reason: `flake_not_allowed: ${ref.value.source} is not under allowedFlakes; ${nothing}` } };
  const installable = `${flakeRef.slice(0, flakeRef.indexOf('#'))}#nixosConfigurations.${ref.value.attr}.config.system.build.toplevel`;
  const args = ['--extra-experimental-features', 'nix-command flakes', 'build', '--no-link', '--print-out-paths', '--option', 'accept-flake-config', 'false', installable];
  const built = await step(d, 'nix', args, d.timeouts.buildMs);
  if (built.result.status !== 'ok') return { refused: { outcome: 'failed', reason: `${built.text}; ${nothing}` } };
  const storePath = built.result.stdout.trim().split('\n').pop() ?? '';
  if (!STORE_PATH_RE.test(storePath)) return { refused: { outcome: 'failed', reason: `nix build printed no store path; ${nothing}` } };
  return verifyThenActivate(d, storePath, ref.value.rev);
}

/** Substitute a closure only from the configured caches, signatures by the configured keys required; never evaluate or build. */
async function switchToClosure(d: SwitchDeps, storePath: string, revision: string): Promise<SwitchStep> {
  const { closureSubstituters: caches, closureTrustedPublicKeys: keys } = d.config;
  if (caches.length === 0 || keys.length === 0) {
    return { refused: { outcome: 'rejected', reason: `closure_not_allowed: no closureSubstituters and closureTrustedPublicKeys are configured; ${nothing}` } };
  }
  const args = ['--realise', storePath, '--option', 'substituters', caches.join(' '), '--option', 'trusted-public-keys', keys.join(' '), '--option', 'require-sigs', 'true'];
  const got = await step(d, 'nix-store', args, d.timeouts.buildMs);
  if (got.result.status !== 'ok') {
    const untrusted = /does not have a valid signature|lacks a (valid )?signature/.test(got.result.stderr);
    return {
      refused: untrusted
        ? { outcome: 'rejected', reason: `untrusted_closure: no configured cache has ${storePath} signed by a key in closureTrustedPublicKeys; ${nothing}` }
        : { outcome: 'failed', reason: `${got.text}; ${nothing}` },
    };
  }
  return verifyThenActivate(d, storePath, revision);
}

const GenerationList = z.array(z.object({ generation: z.number().int() }).loose());

/** The highest generation below `current`, which a rollback order returns to. */
async function generationBefore(host: Host, current: number): Promise<number | null> {
  const r = await host.exec('nixos-rebuild', ['list-generations', '--json'], { timeoutMs: QUERY_TIMEOUT_MS });
  if (r.status !== 'ok') return null;
  try {
    const gens = GenerationList.safeParse(JSON.parse(r.stdout));
    const older = gens.success ? gens.data.map((g) => g.generation).filter((n) => n < current) : [];
    return older.length ? Math.max(...older) : null;
  } catch {
    return null;
  }
}

/**
 * Switch to exactly generation `n`: the one recorded before a switch, never "the one below the
 * newest", which after an earlier rollback is the known-bad generation that was rolled back from.
 */
export async function switchToGeneration(d: SwitchDeps, n: number): Promise<{ result: ExecResult; text: string }> {
  const profile = await step(d, 'nix-env', ['-p', SYSTEM_PROFILE, '--switch-generation', String(n)], PROFILE_STEP_MS);
  if (profile.result.status !== 'ok') return profile;
  return step(d, `${SYSTEM_PROFILE}-${n}-link/bin/switch-to-configuration`, ['switch'], d.timeouts.activateMs);
}

/** Carry out one switch action. `preGeneration`: the profile's generation before this request acted. */
export async function performSwitch(d: SwitchDeps, a: SwitchAction, preGeneration: number | null): Promise<SwitchStep> {
  switch (a.kind) {
    case 'rebuild_switch':
      return switchToFlake(d, a.flakeRef);
    case 'switch_closure':
      return switchToClosure(d, a.storePath, a.revision);
    case 'rollback': {
      const target = preGeneration === null ? null : await generationBefore(d.host, preGeneration);
      if (target === null) return { refused: { outcome: 'failed', reason: `no generation older than ${preGeneration ?? 'the unknown current one'} to roll back to; ${nothing}` } };
      return switchToGeneration(d, target);
    }
  }
}
