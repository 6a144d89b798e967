import { fail, ok, type SimReply } from './reply.js';
import { hexOf, storeHash } from './store-path.js';
import type { UnitKind } from './units.js';

/** What a system configuration brings when it is activated. */
export interface GenerationSpec {
  /** The flake's git revision (`system.configurationRevision`); null for a dirty tree. */
  readonly configurationRevision: string | null;
  /** NixOS release, e.g. "25.05". */
  readonly release: string;
  /** 40 hex digits. */
  readonly nixpkgsRevision: string;
  readonly units: Readonly<Record<string, UnitKind>>;
  /** What `nft list ruleset` prints once this generation's firewall is loaded. */
  readonly ruleset: string;
}

/** A built NixOS system toplevel in the store: what activating it brings and how activation ends. */
export interface SystemClosure extends GenerationSpec {
  readonly storePath: string;
  readonly nixosVersion: string;
  /** Units that fail whenever they start in this system (an unhealthy switch). */
  readonly brokenUnits: readonly string[];
  /** How `switch-to-configuration switch` of this system ends once it has activated. */
  readonly activation: 'success' | 'fail' | 'hang';
}

export interface Generation extends SystemClosure {
  readonly number: number;
  readonly createdAt: number;
}

/**
 * How the next build of a flake ends: success; fail or hang while building (nothing built);
 * unhealthy (builds a system whose activation exits 0 but a unit stays failed); activation_fail or
 * activation_hang (builds a system whose activation exits 4 or never returns, which is what a real
 * switch does when a unit fails to start). Used by `nix build` and `nixos-rebuild switch --flake`.
 */
export type RebuildMode = 'success' | 'fail' | 'hang' | 'unhealthy' | 'activation_fail' | 'activation_hang';
export interface RebuildScript {
  readonly mode: RebuildMode;
  /** For unhealthy: the unit that fails. Default: the first long-running unit of the new generation. */
  readonly failUnit?: string;
}
/** How the next profile switch back (`nix-env --switch-generation`, `nixos-rebuild switch --rollback`) ends. */
export type RollbackMode = 'success' | 'fail' | 'hang';

/** A store path in a simulated binary cache and the public key (`name:base64`) its narinfo is signed with. */
export interface CachedClosure {
  readonly closure: SystemClosure;
  readonly signedBy: string;
}

const CODENAMES: Record<string, string> = { '24.05': 'Uakari', '24.11': 'Vicuna', '25.05': 'Warbler', '25.11': 'Xantusia', '26.05': 'Yarara' };
export const SYSTEM_PROFILE = '/nix/var/nix/profiles/system';
const TOPLEVEL_ATTR = /^nixosConfigurations\.([A-Za-z0-9_][A-Za-z0-9_-]*)\.config\.system\.build\.toplevel$/;

function ymd(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');
}

function dateTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

export interface Durations {
  readonly rebuildMs: number;
  readonly rollbackMs: number;
}

/** What nixpkgs' nixos-version script holds: the JSON of `--json` in a here-document (nixos/modules/installer/tools). */
export function nixosVersionScript(c: SystemClosure): string {
  const json: Record<string, string> = {};
  if (c.configurationRevision) json.configurationRevision = c.configurationRevision;
  json.nixosVersion = c.nixosVersion;
  json.nixpkgsRevision = c.nixpkgsRevision;
  return [
    '#! /nix/store/9yf5nqzs4y5sdfhh6bfa2x1xwcbh3m4r-bash-5.2p37/bin/bash',
    '# shellcheck shell=bash',
    '',
    'case "$1" in',
    '  --hash|--revision)',
    `    echo "${c.nixpkgsRevision}"`,
    '    ;;',
    '  --json)',
    "    cat <<'EOF'",
    JSON.stringify(json),
    'EOF',
    '    ;;',
    '  *)',
    `    echo "${c.nixosVersion} (${CODENAMES[c.release] ?? 'Unknown'})"`,
    '    ;;',
    'esac',
    '',
  ].join('\n');
}

/**
 * The system profile's generations, the store, the flakes the appliance can build, binary caches,
 * and the commands that move between them: `nix build`, `nix-store --realise`, `nix-env` on the
 * system profile, `switch-to-configuration`, and `nixos-rebuild` (which does the same steps).
 * The profile (/nix/var/nix/profiles/system) and the running system (/run/current-system) are
 * separate, as on a real machine: `nix-env --set` moves the first, activation the second.
 */
export class Generations {
  private readonly list: Generation[] = [];
  private profileNumber = 0;
  private running: SystemClosure | null = null;
  private readonly store = new Map<string, SystemClosure>();
  private readonly caches = new Map<string, Map<string, CachedClosure>>();
  private readonly flakes = new Map<string, GenerationSpec>();
  private readonly rebuildScript: RebuildScript[] = [];
  private readonly rollbackScript: RollbackMode[] = [];

  constructor(
    private readonly hostName: string,
    private readonly now: () => number,
    private readonly activate: (c: SystemClosure) => void,
    /** Writes the closure's files (bin/switch-to-configuration, sw/bin/nixos-version) into the host's tree. */
    private readonly materialize: (c: SystemClosure) => void,
    private readonly durations: Durations,
  ) {}

  /** A system closure for `spec`, as a build would produce it; the same inputs give the same path. */
  closureFor(spec: GenerationSpec, brokenUnits: readonly string[] = [], activation: SystemClosure['activation'] = 'success'): SystemClosure {
    const nixosVersion = `${spec.release}.${ymd(this.now())}.${spec.nixpkgsRevision.slice(0, 7)}`;
    const seed = `${this.hostName}/${spec.configurationRevision}/${spec.nixpkgsRevision}/${brokenUnits.join(',')}/${activation}/${nixosVersion}`;
    return { ...spec, nixosVersion, brokenUnits: [...brokenUnits], activation, storePath: `/nix/store/${storeHash(seed)}-nixos-system-${this.hostName}-${nixosVersion}` };
  }

  private addToStore(c: SystemClosure): void {
    if (!this.store.has(c.storePath)) {
      this.store.set(c.storePath, c);
      this.materialize(c);
    }
  }

  private newGeneration(c: SystemClosure): Generation {
    this.addToStore(c);
    const number = this.list.length ? Math.max(...this.list.map((g) => g.number)) + 1 : 1;
    const g: Generation = { ...c, number, createdAt: this.now() };
    this.list.push(g);
    return g;
  }

  /** Add a generation (as if built earlier) without activating it. */
  add(spec: GenerationSpec, brokenUnits: readonly string[] = []): Generation {
    return this.newGeneration(this.closureFor(spec, brokenUnits, 'success'));
  }

  /** Point the profile at a generation and activate it (what a successful switch leaves). */
  switchTo(number: number): void {
    const g = this.generation(number);
    if (!g) throw new Error(`simulated host has no generation ${number}`);
    this.profileNumber = number;
    this.activateClosure(g);
  }

  private activateClosure(c: SystemClosure): void {
    this.running = c;
    this.activate(c);
  }

  private generation(number: number): Generation | undefined {
    return this.list.find((x) => x.number === number);
  }

  /** The generation the system profile points at. */
  current(): Generation {
    const g = this.generation(this.profileNumber);
    if (!g) throw new Error('simulated host has no current generation');
    return g;
  }

  /** What /run/current-system points at. */
  runningSystem(): SystemClosure {
    if (!this.running) throw new Error('simulated host runs no system');
    return this.running;
  }

  all(): readonly Generation[] {
    return [...this.list];
  }

  inStore(path: string): boolean {
    return this.store.has(path);
  }

  defineFlake(ref: string, spec: GenerationSpec): void {
    this.flakes.set(ref, spec);
  }

  flake(ref: string): GenerationSpec | undefined {
    return this.flakes.get(ref);
  }

  /** Put a system closure into a binary cache at `url`, its narinfo signed by `signedBy` (`name:base64`). */
  publish(url: string, closure: SystemClosure, signedBy: string): void {
    const cache = this.caches.get(url) ?? new Map<string, CachedClosure>();
    cache.set(closure.storePath, { closure, signedBy });
    this.caches.set(url, cache);
  }

  scriptRebuild(scripts: readonly RebuildScript[]): void {
    this.rebuildScript.push(...scripts);
  }

  scriptRollback(modes: readonly RollbackMode[]): void {
    this.rollbackScript.push(...modes);
  }

  // ---- nix build ----

  /** Build `flakeKey` (`URL#name`) per the next script: the closure, or how the build failed. */
  private build(flakeKey: string, timeoutMs: number): { closure: SystemClosure } | { reply: SimReply } {
    const script = this.rebuildScript.shift() ?? { mode: 'success' };
    const spec = this.flakes.get(flakeKey);
    if (!spec) return { reply: fail(1, `error: cannot find flake '${flakeKey}' in the flake registries\n`) };
    // Killed before it finished building: nothing built, as on a real machine.
    if (script.mode === 'hang' || timeoutMs < this.durations.rebuildMs) return { reply: { hang: true } };
    if (script.mode === 'fail') {
      const drv = `/nix/store/${storeHash(`${flakeKey}/drv/${this.now()}`)}-nixos-system-${this.hostName}-${spec.release}.drv`;
      return {
        reply: {
          exitCode: 1,
          stdout: '',
          stderr: [
            `error: builder for '${drv}' failed with exit code 1;`,
            '       last 2 log lines:',
            "       > error: The option `services.postgresql.settings.shared_buffers' has conflicting definition values:",
            '       > - In `/nix/store/modules/database.nix\': "512MB"',
            `       For full logs, run 'nix log ${drv}'.`,
            '',
          ].join('\n'),
          durationMs: Math.round(this.durations.rebuildMs / 3),
        },
      };
    }
    const broken: string[] = [];
    if (script.mode === 'unhealthy') {
      const unit = script.failUnit ?? Object.entries(spec.units).find(([, kind]) => kind === 'service')?.[0];
      if (!unit) throw new Error('unhealthy rebuild needs a long-running unit to fail');
      broken.push(unit);
    }
    const activation = script.mode === 'activation_fail' ? 'fail' : script.mode === 'activation_hang' ? 'hang' : 'success';
    const closure = this.closureFor(spec, broken, activation);
    this.addToStore(closure);
    return { closure };
  }

  /**
   * `nix [--extra-experimental-features F] build --no-link --print-out-paths [--option K V]...
   * INSTALLABLE`, where INSTALLABLE is `URL#nixosConfigurations.NAME.config.system.build.toplevel`.
   */
  nix(args: readonly string[], timeoutMs: number): SimReply {
    const rest = [...args];
    const options = new Map<string, string>();
    const flags = new Set<string>();
    let sub: string | undefined;
    const positional: string[] = [];
    while (rest.length) {
      const a = rest.shift()!;
      if (a === '--extra-experimental-features') rest.shift();
      else if (a === '--option') {
        const k = rest.shift();
        const v = rest.shift();
        if (k === undefined || v === undefined) return fail(1, "error: flag '--option' requires 2 arguments\n");
        options.set(k, v);
      } else if (a.startsWith('--')) flags.add(a);
      else if (sub === undefined) sub = a;
      else positional.push(a);
    }
    if (sub !== 'build' || positional.length !== 1) return fail(1, `error: unrecognised command or arguments: ${args.join(' ')}\n`);
    const installable = positional[0]!;
    const hash = installable.lastIndexOf('#');
    const attr = hash < 0 ? null : TOPLEVEL_ATTR.exec(installable.slice(hash + 1));
    if (!attr) return fail(1, `error: flake does not provide attribute '${installable.slice(hash + 1)}'\n`);
    const built = this.build(`${installable.slice(0, hash)}#${attr[1]}`, timeoutMs);
    if ('reply' in built) return built.reply;
    return { exitCode: 0, stdout: flags.has('--print-out-paths') ? `${built.closure.storePath}\n` : '', stderr: '', durationMs: this.durations.rebuildMs };
  }

  // ---- nix-store --realise from binary caches ----

  /** `nix-store --realise PATH --option substituters "U..." --option trusted-public-keys "K..." --option require-sigs true`. */
  nixStore(args: readonly string[]): SimReply {
    if (args[0] !== '--realise' || !args[1]) return fail(1, `error: unknown flag or arguments: ${args.join(' ')}\n`);
    const path = args[1];
    const options = new Map<string, string>();
    for (let i = 2; i < args.length; i += 3) {
      if (args[i] !== '--option' || args[i + 2] === undefined) return fail(1, `error: unrecognised flag '${args[i] ?? ''}'\n`);
      options.set(args[i + 1]!, args[i + 2]!);
    }
    if (this.store.has(path)) return ok(`${path}\n`, 50);
    const substituters = (options.get('substituters') ?? '').split(/\s+/).filter(Boolean);
    const trusted = new Set((options.get('trusted-public-keys') ?? '').split(/\s+/).filter(Boolean));
    const requireSigs = options.get('require-sigs') !== 'false';
    const warnings: string[] = [];
    for (const url of substituters) {
      const hit = this.caches.get(url)?.get(path);
      if (!hit) continue;
      if (requireSigs && !trusted.has(hit.signedBy)) {
        warnings.push(`warning: substituter '${url}' does not have a valid signature for path '${path}'`);
        continue;
      }
      this.addToStore(hit.closure);
      return { exitCode: 0, stdout: `${path}\n`, stderr: `copying path '${path}' from '${url}'...\n`, durationMs: 8_000 };
    }
    return fail(1, [...warnings, `error: path '${path}' is required, but there is no substituter that can build it`, ''].join('\n'));
  }

  // ---- nix-env on the system profile ----

  /** `nix-env -p /nix/var/nix/profiles/system --set PATH` and `--switch-generation N`. */
  nixEnv(args: readonly string[]): SimReply {
    if (args[0] !== '-p' || args[1] !== SYSTEM_PROFILE || args.length !== 4) return fail(1, `error: unknown arguments: ${args.join(' ')}\n`);
    if (args[2] === '--set') {
      const path = args[3]!;
      if (!this.store.has(path)) return fail(1, `error: path '${path}' is not valid\n`);
      this.profileNumber = this.newGeneration(this.store.get(path)!).number;
      return ok('', 300);
    }
    if (args[2] === '--switch-generation') {
      const mode = this.rollbackScript.shift() ?? 'success';
      if (mode === 'hang') return { hang: true };
      if (mode === 'fail') return fail(1, "error: opening lock file '/nix/var/nix/profiles/system.lock': Read-only file system\n");
      const n = Number(args[3]);
      if (!Number.isInteger(n) || !this.generation(n)) return fail(1, `error: generation ${args[3]} does not exist\n`);
      const from = this.profileNumber;
      this.profileNumber = n;
      return { exitCode: 0, stdout: '', stderr: `switching profile from version ${from} to ${n}\n`, durationMs: 300 };
    }
    return fail(1, `error: unknown flag '${args[2]}'\n`);
  }

  // ---- switch-to-configuration ----

  /** The system a `.../bin/switch-to-configuration` path belongs to, or null when there is no such file. */
  closureOfSwitchScript(command: string): SystemClosure | null {
    const m = /^(.*)\/bin\/switch-to-configuration$/.exec(command);
    if (!m) return null;
    const link = /^\/nix\/var\/nix\/profiles\/system-(\d+)-link$/.exec(m[1]!);
    if (link) return this.generation(Number(link[1])) ?? null;
    if (m[1] === SYSTEM_PROFILE) return this.generation(this.profileNumber) ?? null;
    return this.store.get(m[1]!) ?? null;
  }

  switchToConfiguration(command: string, args: readonly string[]): SimReply {
    const c = this.closureOfSwitchScript(command);
    if (!c) throw new Error(`simulated host has no system for ${command}`);
    if (args.length !== 1 || args[0] !== 'switch') return fail(1, 'Usage: switch-to-configuration [switch|boot|test|dry-activate]\n');
    this.activateClosure(c);
    if (c.activation === 'hang') return { hang: true };
    if (c.activation === 'fail') {
      return {
        exitCode: 4,
        stdout: '',
        stderr: 'activating the configuration...\nsetting up /etc...\nwarning: error(s) occurred while switching to the new configuration\n',
        durationMs: this.durations.rollbackMs,
      };
    }
    return {
      exitCode: 0,
      stdout: '',
      stderr: 'activating the configuration...\nsetting up /etc...\nreloading user units for root...\nrestarting sysinit-reactivation.target\n',
      durationMs: this.durations.rollbackMs,
    };
  }

  // ---- nixos-rebuild: the same steps in one command ----

  nixosRebuild(args: readonly string[], timeoutMs: number): SimReply {
    if (args[0] === 'switch' && args[1] === '--flake' && args[2] && args.length === 3) return this.rebuild(args[2], timeoutMs);
    if (args[0] === 'switch' && args[1] === '--rollback' && args.length === 2) return this.rollback(timeoutMs);
    if (args[0] === 'list-generations' && args[1] === '--json' && args.length === 2) return ok(this.listJson(), 400);
    return fail(
      2,
      `usage: nixos-rebuild [--verbose] [--flake FLAKE] {switch,boot,test,build,list-generations} ...\nnixos-rebuild: error: unrecognized arguments: ${args.join(' ')}\n`,
    );
  }

  private rebuild(ref: string, timeoutMs: number): SimReply {
    const built = this.build(ref, timeoutMs);
    if ('reply' in built) {
      const r = built.reply;
      return 'hang' in r ? r : { ...r, stderr: `building the system configuration...\n${r.stderr ?? ''}` };
    }
    const g = this.newGeneration(built.closure);
    this.switchTo(g.number);
    if (built.closure.activation === 'hang') return { hang: true };
    if (built.closure.activation === 'fail') {
      return {
        exitCode: 4,
        stdout: '',
        stderr: 'building the system configuration...\nactivating the configuration...\nsetting up /etc...\nwarning: error(s) occurred while switching to the new configuration\n',
        durationMs: this.durations.rebuildMs,
      };
    }
    return {
      exitCode: 0,
      stdout: '',
      stderr:
        'building the system configuration...\nactivating the configuration...\nsetting up /etc...\nreloading user units for root...\nrestarting sysinit-reactivation.target\n',
      durationMs: this.durations.rebuildMs,
    };
  }

  /** `nixos-rebuild switch --rollback` is `nix-env --rollback`: the next lower generation that exists, whatever ran before. */
  private rollback(timeoutMs: number): SimReply {
    const mode = this.rollbackScript.shift() ?? 'success';
    if (mode === 'hang' || timeoutMs < this.durations.rollbackMs) return { hang: true };
    if (mode === 'fail') return fail(1, "error: opening lock file '/nix/var/nix/profiles/system.lock': Read-only file system\n");
    const older = this.list.filter((g) => g.number < this.profileNumber).sort((a, b) => b.number - a.number)[0];
    if (!older) return fail(1, `error: no generation older than the current (${this.profileNumber}) exists\n`);
    const from = this.profileNumber;
    this.switchTo(older.number);
    return {
      exitCode: 0,
      stdout: '',
      stderr: `switching profile from version ${from} to ${older.number}\nactivating the configuration...\nsetting up /etc...\n`,
      durationMs: this.durations.rollbackMs,
    };
  }

  private listJson(): string {
    const rows = [...this.list]
      .sort((a, b) => b.number - a.number)
      .map((g) => ({
        generation: g.number,
        date: dateTime(g.createdAt),
        nixosVersion: g.nixosVersion,
        kernelVersion: '6.12.58',
        configurationRevision: g.configurationRevision ?? '',
        specialisations: [],
        current: g.number === this.profileNumber,
      }));
    return JSON.stringify(rows, null, 2) + '\n';
  }

  /** /run/current-system/sw/bin/nixos-version: the running system's. */
  nixosVersion(args: readonly string[]): SimReply {
    const g = this.runningSystem();
    if (args.length === 0) return ok(`${g.nixosVersion} (${CODENAMES[g.release] ?? 'Unknown'})\n`, 10);
    if (args[0] === '--json' && args.length === 1) {
      const json: Record<string, string> = {};
      if (g.configurationRevision) json.configurationRevision = g.configurationRevision;
      json.nixosVersion = g.nixosVersion;
      json.nixpkgsRevision = g.nixpkgsRevision;
      return ok(JSON.stringify(json) + '\n', 10);
    }
    if (args[0] === '--revision' && args.length === 1) return ok(`${g.nixpkgsRevision}\n`, 10);
    if (args[0] === '--configuration-revision' && args.length === 1) return ok(`${g.configurationRevision ?? ''}\n`, 10);
    return fail(1, `nixos-version: unknown option \`${args[0]}'\n`);
  }

  /** The system links: /run/current-system, the system profile and its generation links; null for any other path. */
  link(path: string): { readonly target: string; readonly resolved: string } | null {
    if (path === '/run/current-system') {
      const p = this.runningSystem().storePath;
      return { target: p, resolved: p };
    }
    const g = this.current();
    if (path === SYSTEM_PROFILE) return { target: `system-${g.number}-link`, resolved: g.storePath };
    const m = /^\/nix\/var\/nix\/profiles\/system-(\d+)-link$/.exec(path);
    const target = m && this.generation(Number(m[1]));
    return target ? { target: target.storePath, resolved: target.storePath } : null;
  }

  /** `readlink [-f] PATH` for the system profile and /run/current-system. */
  readlink(args: readonly string[]): SimReply {
    const follow = args[0] === '-f';
    const path = follow ? args[1] : args[0];
    if (!path || args.length !== (follow ? 2 : 1)) return fail(1, 'readlink: missing operand\n');
    const link = this.link(path);
    if (link) return ok(`${follow ? link.resolved : link.target}\n`, 2);
    // readlink prints nothing and exits 1 for a path that is not a symlink.
    return fail(1, '');
  }
}

/** A nixpkgs revision for a simulated release, stable per seed. */
export function nixpkgsRevisionFor(seed: string): string {
  return hexOf(`nixpkgs/${seed}`, 40);
}
