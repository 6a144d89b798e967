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

export interface Generation extends GenerationSpec {
  readonly number: number;
  readonly storePath: string;
  readonly nixosVersion: string;
  readonly createdAt: number;
  /** Units that fail whenever they start in this generation (an unhealthy switch). */
  readonly brokenUnits: readonly string[];
}

/**
 * How the next `nixos-rebuild switch --flake` ends: success; fail or hang while building (nothing
 * switched); unhealthy (switches, exits 0, a unit stays failed); activation_fail or
 * activation_hang (the profile switched, then activation exits 4 or never returns), which is what
 * a real switch does when a unit fails to start.
 */
export type RebuildMode = 'success' | 'fail' | 'hang' | 'unhealthy' | 'activation_fail' | 'activation_hang';
export interface RebuildScript {
  readonly mode: RebuildMode;
  /** For unhealthy: the unit that fails. Default: the first long-running unit of the new generation. */
  readonly failUnit?: string;
}
export type RollbackMode = 'success' | 'fail' | 'hang';

const CODENAMES: Record<string, string> = { '24.05': 'Uakari', '24.11': 'Vicuna', '25.05': 'Warbler', '25.11': 'Xantusia', '26.05': 'Yarara' };

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

/** The system profile's generations, the flakes the appliance can build, and `nixos-rebuild`. */
export class Generations {
  private readonly list: Generation[] = [];
  private currentNumber = 0;
  private readonly flakes = new Map<string, GenerationSpec>();
  private readonly rebuildScript: RebuildScript[] = [];
  private readonly rollbackScript: RollbackMode[] = [];

  constructor(
    private readonly hostName: string,
    private readonly now: () => number,
    private readonly activate: (g: Generation) => void,
    private readonly durations: Durations,
  ) {}

  /** Add a generation (as if built earlier) without activating it. */
  add(spec: GenerationSpec, brokenUnits: readonly string[] = []): Generation {
    const number = this.list.length ? Math.max(...this.list.map((g) => g.number)) + 1 : 1;
    const createdAt = this.now();
    const nixosVersion = `${spec.release}.${ymd(createdAt)}.${spec.nixpkgsRevision.slice(0, 7)}`;
    const seed = `${this.hostName}/${number}/${spec.configurationRevision}/${spec.nixpkgsRevision}/${brokenUnits.join(',')}`;
    const g: Generation = {
      ...spec,
      number,
      nixosVersion,
      createdAt,
      brokenUnits: [...brokenUnits],
      storePath: `/nix/store/${storeHash(seed)}-nixos-system-${this.hostName}-${nixosVersion}`,
    };
    this.list.push(g);
    return g;
  }

  switchTo(number: number): void {
    const g = this.list.find((x) => x.number === number);
    if (!g) throw new Error(`simulated host has no generation ${number}`);
    this.currentNumber = number;
    this.activate(g);
  }

  current(): Generation {
    const g = this.list.find((x) => x.number === this.currentNumber);
    if (!g) throw new Error('simulated host has no current generation');
    return g;
  }

  all(): readonly Generation[] {
    return [...this.list];
  }

  defineFlake(ref: string, spec: GenerationSpec): void {
    this.flakes.set(ref, spec);
  }

  flake(ref: string): GenerationSpec | undefined {
    return this.flakes.get(ref);
  }

  scriptRebuild(scripts: readonly RebuildScript[]): void {
    this.rebuildScript.push(...scripts);
  }

  scriptRollback(modes: readonly RollbackMode[]): void {
    this.rollbackScript.push(...modes);
  }

  nixosRebuild(args: readonly string[], timeoutMs: number): SimReply {
    if (args[0] === 'switch' && args[1] === '--flake' && args[2] && args.length === 3) return this.rebuild(args[2], timeoutMs);
    if (args[0] === 'switch' && args[1] === '--rollback' && args.length === 2) return this.rollback(timeoutMs);
    if (args[0] === 'list-generations' && args[1] === '--json' && args.length === 2) return ok(this.listJson(), 400);
    return fail(2, `usage: nixos-rebuild [--verbose] [--flake FLAKE] {switch,boot,test,build,list-generations} ...\nnixos-rebuild: error: unrecognized arguments: ${args.join(' ')}\n`);
  }

  private rebuild(ref: string, timeoutMs: number): SimReply {
    const script = this.rebuildScript.shift() ?? { mode: 'success' };
    const spec = this.flakes.get(ref);
    if (!spec) {
      return fail(1, `building the system configuration...\nerror: cannot find flake '${ref}' in the flake registries\n`);
    }
    // Killed before it finished building: nothing switched, as on a real machine.
    if (script.mode === 'hang' || timeoutMs < this.durations.rebuildMs) return { hang: true };
    if (script.mode === 'fail') {
      const drv = `/nix/store/${storeHash(`${ref}/drv/${this.now()}`)}-nixos-system-${this.hostName}-${spec.release}.drv`;
      return {
        exitCode: 1,
        stdout: '',
        stderr: [
          'building the system configuration...',
          `error: builder for '${drv}' failed with exit code 1;`,
          '       last 2 log lines:',
          "       > error: The option `services.postgresql.settings.shared_buffers' has conflicting definition values:",
          '       > - In `/nix/store/modules/database.nix\': "512MB"',
          `       For full logs, run 'nix log ${drv}'.`,
          '',
        ].join('\n'),
        durationMs: Math.round(this.durations.rebuildMs / 3),
      };
    }
    const broken: string[] = [];
    if (script.mode === 'unhealthy') {
      const unit = script.failUnit ?? Object.entries(spec.units).find(([, kind]) => kind === 'service')?.[0];
      if (!unit) throw new Error('unhealthy rebuild needs a long-running unit to fail');
      broken.push(unit);
    }
    const g = this.add(spec, broken);
    this.switchTo(g.number);
    if (script.mode === 'activation_hang') return { hang: true };
    if (script.mode === 'activation_fail') {
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
      stderr: 'building the system configuration...\nactivating the configuration...\nsetting up /etc...\nreloading user units for root...\nrestarting sysinit-reactivation.target\n',
      durationMs: this.durations.rebuildMs,
    };
  }

  private rollback(timeoutMs: number): SimReply {
    const mode = this.rollbackScript.shift() ?? 'success';
    if (mode === 'hang' || timeoutMs < this.durations.rollbackMs) return { hang: true };
    if (mode === 'fail') return fail(1, 'error: opening lock file \'/nix/var/nix/profiles/system.lock\': Read-only file system\n');
    const older = this.list.filter((g) => g.number < this.currentNumber).sort((a, b) => b.number - a.number)[0];
    if (!older) return fail(1, `error: no generation older than the current (${this.currentNumber}) exists\n`);
    const from = this.currentNumber;
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
        current: g.number === this.currentNumber,
      }));
    return JSON.stringify(rows, null, 2) + '\n';
  }

  nixosVersion(args: readonly string[]): SimReply {
    const g = this.current();
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

  /** `readlink [-f] PATH` for the system profile and /run/current-system. */
  readlink(args: readonly string[]): SimReply {
    const follow = args[0] === '-f';
    const path = follow ? args[1] : args[0];
    if (!path || args.length !== (follow ? 2 : 1)) return fail(1, 'readlink: missing operand\n');
    const g = this.current();
    if (path === '/run/current-system') return ok(`${g.storePath}\n`, 2);
    if (path === '/nix/var/nix/profiles/system') return ok(follow ? `${g.storePath}\n` : `system-${g.number}-link\n`, 2);
    const link = /^\/nix\/var\/nix\/profiles\/system-(\d+)-link$/.exec(path);
    const target = link && this.list.find((x) => x.number === Number(link[1]));
    if (target) return ok(`${target.storePath}\n`, 2);
    // readlink prints nothing and exits 1 for a path that is not a symlink.
    return fail(1, '');
  }
}

/** A nixpkgs revision for a simulated release, stable per seed. */
export function nixpkgsRevisionFor(seed: string): string {
  return hexOf(`nixpkgs/${seed}`, 40);
}
