import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, posix, resolve } from 'node:path';
import {
  DEFAULT_MAX_READ_BYTES,
  linkTarget,
  readFileBounded,
  statPath,
  type ExecOptions,
  type ExecResult,
  type ExecStatus,
  type FileStat,
  type Host,
  type ReadResult,
} from '../../src/host/index.js';
import type { SimReply } from './reply.js';
import { UnitTable, type ActiveState } from './units.js';
import { Generations, SYSTEM_PROFILE, nixosVersionScript, type Generation, type GenerationSpec, type RebuildScript, type RollbackMode, type SystemClosure } from './generations.js';
import { Firewall } from './firewall.js';
import { Disks, type SimVolume } from './disks.js';
import { chronyc, timedatectl, type NtpState } from './ntp.js';

/**
 * Per-command faults: missing (binary not installed), nonzero (fails with the error it prints on a
 * real host), hang (never exits: the caller's timeout fires, and the simulated clock moves by it),
 * garbage (exit 0 with unparseable output), stall (the exec promise never settles, a broken Host
 * for testing a caller's own deadline).
 */
export type Fault = 'missing' | 'nonzero' | 'hang' | 'garbage' | 'stall';

export interface ExecutedCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** Simulated time when it started. */
  readonly at: number;
  readonly status: ExecStatus;
  readonly exitCode: number | null;
}

/** What the appliance is for: the facts a baseline for it is made from. */
export interface ApplianceProfile {
  /** The flake reference the MSP manages this appliance with. */
  readonly flakeRef: string;
  readonly requiredUnits: readonly string[];
  readonly backupUnit: string;
  readonly backupStampFile: string;
  readonly encryptedMounts: readonly string[];
}

export interface SimulatedHostInit {
  readonly hostname: string;
  readonly now: number;
  /** Directory holding the appliance's files; a fresh temp directory when absent. */
  readonly root?: string;
  readonly profile: ApplianceProfile;
  /** Generations built before, oldest first; the last one is running. */
  readonly history: readonly GenerationSpec[];
  /** What each flake reference builds. */
  readonly flakes: Readonly<Record<string, GenerationSpec>>;
  readonly volumes: readonly SimVolume[];
  readonly ntp: NtpState;
  readonly rebuildMs?: number;
  readonly rollbackMs?: number;
}

const GARBAGE = '\u0000\u001b[0;1;31m*** stack smashing detected ***: terminated\n\u00ff\u00fe{"partial": [1, 2,\n';

/** What each command prints when it fails on a real host (fault `nonzero`). */
const FAILURES: Record<string, { exitCode: number; stderr: string }> = {
  systemctl: { exitCode: 1, stderr: 'Failed to connect to bus: No such file or directory\n' },
  nft: { exitCode: 1, stderr: 'netlink: Error: cache initialization failed: Operation not permitted\n' },
  'nixos-version': { exitCode: 1, stderr: 'jq: error: Could not open file /run/current-system/nixos-version.json: No such file or directory\n' },
  readlink: { exitCode: 1, stderr: '' },
  lsblk: { exitCode: 32, stderr: 'lsblk: failed to access sysfs directory: /sys/dev/block: No such file or directory\n' },
  cryptsetup: { exitCode: 4, stderr: 'Cannot initialize device-mapper. Is dm_mod kernel module loaded?\n' },
  chronyc: { exitCode: 1, stderr: '506 Cannot talk to daemon\n' },
  timedatectl: { exitCode: 1, stderr: 'Failed to connect to bus: No such file or directory\n' },
  'nixos-rebuild': { exitCode: 1, stderr: "error: opening lock file '/nix/var/nix/profiles/system.lock': Permission denied\n" },
  nix: { exitCode: 1, stderr: "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': Connection refused\n" },
  'nix-store': { exitCode: 1, stderr: "error: cannot connect to socket at '/nix/var/nix/daemon-socket/socket': Connection refused\n" },
  'nix-env': { exitCode: 1, stderr: "error: opening lock file '/nix/var/nix/profiles/system.lock': Permission denied\n" },
  'switch-to-configuration': { exitCode: 1, stderr: 'Could not acquire lock\n' },
};

/**
 * A simulated NixOS appliance behind the Host port: files in a real directory (so reads and stat
 * are real file-system calls), a manual clock that commands advance by their simulated duration,
 * and scripted `systemctl`, `nft`, `nixos-version`, `readlink`, `nixos-rebuild`, `nix build`,
 * `nix-store --realise` (from simulated binary caches with signed paths), `nix-env` on the system
 * profile, `switch-to-configuration`, `lsblk`, `cryptsetup`, `chronyc` and `timedatectl`
 * printing what the real ones print.
 */
export class SimulatedHost implements Host {
  readonly root: string;
  readonly profile: ApplianceProfile;
  /** Every command run, in order, with its arguments and outcome. */
  readonly executed: ExecutedCommand[] = [];
  private clock: number;
  private readonly name: string;
  private readonly ownsRoot: boolean;
  private readonly faults = new Map<string, Fault>();
  private readonly units: UnitTable;
  private readonly generations: Generations;
  private readonly firewall: Firewall;
  private readonly disks: Disks;
  private readonly ntp: NtpState;

  constructor(init: SimulatedHostInit) {
    this.name = init.hostname;
    this.clock = init.now;
    this.ownsRoot = init.root === undefined;
    this.root = resolve(init.root ?? mkdtempSync(join(tmpdir(), 'sim-appliance-')));
    this.profile = init.profile;
    // The directories holding the system links exist as on NixOS; the links themselves are the profile's.
    for (const d of ['/run', dirname(SYSTEM_PROFILE)]) mkdirSync(join(this.root, d), { recursive: true });
    this.ntp = { ...init.ntp };
    this.disks = new Disks(init.volumes.map((v) => ({ ...v, mountpoints: [...v.mountpoints], crypt: v.crypt ? { ...v.crypt } : null })));
    this.firewall = new Firewall('');
    this.units = new UnitTable((unit, afterMs) => {
      // The backup touches its stamp when it finishes, afterMs into the call on the simulated clock.
      const at = this.clock + afterMs;
      if (unit === this.profile.backupUnit) this.writeFile(this.profile.backupStampFile, `${new Date(at).toISOString()}\n`, { mtimeMs: at });
    });
    this.generations = new Generations(
      this.name,
      () => this.clock,
      (g) => {
        this.units.activate(g.units, g.brokenUnits);
        this.firewall.ruleset = g.ruleset;
      },
      (c) => {
        this.writeFile(`${c.storePath}/sw/bin/nixos-version`, nixosVersionScript(c), { mode: 0o555 });
        this.writeFile(`${c.storePath}/bin/switch-to-configuration`, '#! /nix/store/simulated-perl/bin/perl\n', { mode: 0o555 });
      },
      { rebuildMs: init.rebuildMs ?? 45_000, rollbackMs: init.rollbackMs ?? 20_000 },
    );
    if (init.history.length === 0) throw new Error('a simulated host needs at least one generation');
    let last: Generation | undefined;
    for (const spec of init.history) last = this.generations.add(spec);
    this.generations.switchTo(last!.number);
    for (const [ref, spec] of Object.entries(init.flakes)) this.generations.defineFlake(ref, spec);
  }

  // ---- the Host port ----

  async exec(command: string, args: readonly string[], options: ExecOptions): Promise<ExecResult> {
    // Yield like a real spawn would, so callers cannot depend on synchronous completion.
    await new Promise<void>((r) => setImmediate(r));
    // switch-to-configuration is run by its path in a system closure: which one matters.
    const name = basename(command) === 'switch-to-configuration' ? command : basename(command);
    const at = this.clock;
    const fault = this.faults.get(basename(command));
    const handler = this.handler(name);
    if (fault === 'stall') {
      this.executed.push({ command: name, args: [...args], at, status: 'timeout', exitCode: null });
      return new Promise<ExecResult>(() => undefined);
    }
    let result: ExecResult;
    if (fault === 'missing' || !handler) {
      result = { status: 'missing', exitCode: null, stdout: '', stderr: `${name}: command not found`, durationMs: 0 };
    } else {
      const reply: SimReply =
        fault === 'hang'
          ? { hang: true }
          : fault === 'nonzero'
            ? { exitCode: FAILURES[name]?.exitCode ?? 1, stdout: '', stderr: FAILURES[name]?.stderr ?? `${name}: failed\n` }
            : fault === 'garbage'
              ? { exitCode: 0, stdout: GARBAGE, stderr: '' }
              : handler(args, options);
      result = this.settle(reply, options.timeoutMs);
    }
    this.executed.push({ command: name, args: [...args], at, status: result.status, exitCode: result.exitCode });
    return result;
  }

  readFile(path: string, maxBytes = DEFAULT_MAX_READ_BYTES): Promise<ReadResult> {
    const real = this.resolvePath(path);
    if (!real) return Promise.resolve({ ok: false, code: 'ENOENT', message: `${path}: not an absolute path` });
    return readFileBounded(real, maxBytes).then((r) => (r.ok ? r : { ...r, message: r.message.replace(real, path) }));
  }

  stat(path: string): Promise<FileStat | null> {
    const real = this.resolvePath(path);
    return real ? statPath(real) : Promise.resolve(null);
  }

  // The system links live in the simulated profile, not in the tree; any other link is a file in the tree.
  async readlink(path: string): Promise<string | null> {
    const system = this.generations.link(path);
    if (system) return system.target;
    const real = this.resolvePath(path);
    return real ? linkTarget(real) : null;
  }

  /** realpath(3) inside the appliance: absolute link targets start again at its root, as on the machine itself. */
  async realpath(path: string): Promise<string | null> {
    if (!path.startsWith('/')) return null;
    let pending = path.split('/').filter((p) => p !== '' && p !== '.');
    let resolved: string[] = [];
    for (let hops = 0; pending.length > 0;) {
      const part = pending.shift()!;
      if (part === '..') {
        resolved.pop();
        continue;
      }
      const candidate = `/${[...resolved, part].join('/')}`;
      const target = await this.readlink(candidate);
      if (target !== null) {
        // Linux gives up with ELOOP after 40 links.
        if (++hops > 40) return null;
        pending = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...pending];
        if (target.startsWith('/')) resolved = [];
        continue;
      }
      if (!(await this.stat(candidate))) return null;
      resolved.push(part);
    }
    return `/${resolved.join('/')}`;
  }

  now(): number {
    return this.clock;
  }

  hostname(): string {
    return this.name;
  }

  // ---- clock ----

  setNow(ms: number): void {
    this.clock = ms;
  }

  advance(ms: number): void {
    this.clock += ms;
  }

  // ---- files ----

  /** Where a path of the appliance lives on this machine; null for a relative path. */
  resolvePath(path: string): string | null {
    if (!path.startsWith('/')) return null;
    // Normalised first, so "/../x" cannot climb out of the root.
    return join(this.root, posix.normalize(path));
  }

  writeFile(path: string, text: string, opts: { mtimeMs?: number; mode?: number } = {}): void {
    const real = this.resolvePath(path);
    if (!real) throw new Error(`simulated host paths are absolute: ${path}`);
    mkdirSync(dirname(real), { recursive: true });
    writeFileSync(real, text, { mode: opts.mode ?? 0o644 });
    this.setMtime(path, opts.mtimeMs ?? this.clock);
  }

  setMtime(path: string, mtimeMs: number): void {
    const real = this.resolvePath(path);
    if (!real) throw new Error(`simulated host paths are absolute: ${path}`);
    utimesSync(real, mtimeMs / 1000, mtimeMs / 1000);
  }

  removeFile(path: string): void {
    const real = this.resolvePath(path);
    if (real) rmSync(real, { force: true });
  }

  /** Remove the root directory if this host created it. */
  dispose(): void {
    if (this.ownsRoot) rmSync(this.root, { recursive: true, force: true });
  }

  // ---- faults and the command log ----

  setFault(command: string, fault: Fault | null): void {
    if (fault) this.faults.set(command, fault);
    else this.faults.delete(command);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Each executed command as one line, e.g. "systemctl restart sshd.service". */
  commandLines(): string[] {
    return this.executed.map((e) => [e.command, ...e.args].join(' '));
  }

  /**
   * Executed commands that change the system (start, restart, stop, a switch, a profile change,
   * an activation): empty means no action was taken. Building or substituting into the store is not one.
   */
  actions(): string[] {
    return this.executed
      .filter(
        (e) =>
          (e.command === 'systemctl' && ['start', 'restart', 'stop'].includes(e.args[0] ?? '')) ||
          (e.command === 'nixos-rebuild' && e.args[0] === 'switch') ||
          (e.command === 'nix-env' && (e.args.includes('--set') || e.args.includes('--switch-generation'))) ||
          e.command.endsWith('/switch-to-configuration'),
      )
      .map((e) => [e.command, ...e.args].join(' '));
  }

  /** Every `switch-to-configuration` run, by the path it ran from: empty means nothing was activated. */
  activations(): string[] {
    return this.executed.filter((e) => e.command.endsWith('/switch-to-configuration')).map((e) => [e.command, ...e.args].join(' '));
  }

  clearExecuted(): void {
    this.executed.length = 0;
  }

  // ---- services ----

  unitState(unit: string): { active: ActiveState; sub: string } | null {
    const u = this.units.get(unit);
    return u ? { active: u.active, sub: u.sub } : null;
  }

  stopService(unit: string): void {
    this.units.set(unit, 'inactive', 'dead');
  }

  failService(unit: string): void {
    this.units.set(unit, 'failed', 'failed');
  }

  /** A broken unit fails every start and restart until repaired. */
  setUnitBroken(unit: string, broken = true): void {
    this.units.setBroken(unit, broken);
  }

  // ---- backup ----

  /** Make the last successful backup `hours` old (simulated clock). */
  setBackupAge(hours: number): void {
    this.writeFile(this.profile.backupStampFile, `${new Date(this.clock - hours * 3_600_000).toISOString()}\n`, { mtimeMs: this.clock - hours * 3_600_000 });
  }

  removeBackupStamp(): void {
    this.removeFile(this.profile.backupStampFile);
  }

  // ---- firewall ----

  get ruleset(): string {
    return this.firewall.ruleset;
  }

  /** Replace the live ruleset (someone ran nft by hand); a switch restores the generation's. */
  changeFirewall(change: string | ((current: string) => string)): void {
    this.firewall.ruleset = typeof change === 'string' ? change : change(this.firewall.ruleset);
  }

  // ---- encryption ----

  get volumes(): readonly SimVolume[] {
    return this.disks.volumes;
  }

  /** The mount now sits on a plain partition (e.g. a disk swapped for an unencrypted one). */
  unencryptMount(mount: string): void {
    const v = this.disks.volumes.find((x) => x.mountpoints.includes(mount));
    if (!v) throw new Error(`simulated host has no mount ${mount}`);
    v.crypt = null;
  }

  // ---- time ----

  get ntpState(): Readonly<NtpState> {
    return { ...this.ntp };
  }

  setNtpOffsetMs(ms: number): void {
    this.ntp.offsetMs = ms;
  }

  setNtpSynchronised(synchronised: boolean): void {
    this.ntp.synchronised = synchronised;
  }

  // ---- generations ----

  currentGeneration(): Generation {
    return this.generations.current();
  }

  listGenerations(): readonly Generation[] {
    return this.generations.all();
  }

  /** What /run/current-system points at (may differ from the profile's generation after `nix-env --set`). */
  runningSystem(): SystemClosure {
    return this.generations.runningSystem();
  }

  inStore(path: string): boolean {
    return this.generations.inStore(path);
  }

  /** A system closure as a build of `spec` on another machine would produce it (not in this store). */
  closureFor(spec: GenerationSpec): SystemClosure {
    return this.generations.closureFor(spec);
  }

  /** Put a closure into the binary cache at `url` (https:// or file://), signed by the key `name:base64`. */
  publishClosure(url: string, closure: SystemClosure, signedBy: string): void {
    this.generations.publish(url, closure, signedBy);
  }

  /** What `nixos-rebuild switch --flake ref` builds. */
  defineFlake(ref: string, spec: GenerationSpec): void {
    this.generations.defineFlake(ref, spec);
  }

  flakeSpec(ref: string): GenerationSpec | undefined {
    return this.generations.flake(ref);
  }

  /** Queue how the next rebuilds end (one entry per `nixos-rebuild switch --flake`); success after that. */
  scriptRebuild(...scripts: (RebuildScript | RebuildScript['mode'])[]): void {
    this.generations.scriptRebuild(scripts.map((s) => (typeof s === 'string' ? { mode: s } : s)));
  }

  /** Queue how the next `nixos-rebuild switch --rollback` calls end; success after that. */
  scriptRollback(...modes: RollbackMode[]): void {
    this.generations.scriptRollback(modes);
  }

  /** Someone switched to an unmanaged build by hand: a new generation with this revision, now running. */
  setRunningRevision(configurationRevision: string | null): Generation {
    const { release, nixpkgsRevision, units, ruleset } = this.generations.current();
    const g = this.generations.add({ configurationRevision, release, nixpkgsRevision, units, ruleset });
    this.generations.switchTo(g.number);
    return g;
  }

  // ---- command dispatch ----

  private handler(name: string): ((args: readonly string[], options: ExecOptions) => SimReply) | null {
    switch (name) {
      case 'systemctl':
        return (a) => this.units.systemctl(a);
      case 'nft':
        return (a) => this.firewall.nft(a);
      case 'nixos-version':
        return (a) => this.generations.nixosVersion(a);
      case 'readlink':
        return (a) => this.generations.readlink(a);
      case 'nixos-rebuild':
        return (a, o) => this.generations.nixosRebuild(a, o.timeoutMs);
      case 'nix':
        return (a, o) => this.generations.nix(a, o.timeoutMs);
      case 'nix-store':
        return (a) => this.generations.nixStore(a);
      case 'nix-env':
        return (a) => this.generations.nixEnv(a);
      case 'lsblk':
        return (a) => this.disks.lsblk(a);
      case 'cryptsetup':
        return (a) => this.disks.cryptsetup(a);
      case 'chronyc':
        return (a) => chronyc(this.ntp, a, this.clock);
      case 'timedatectl':
        return (a) => timedatectl(this.ntp, a, this.clock);
      default:
        // A path that is no system's script does not exist: the spawn fails as for a missing binary.
        return name.endsWith('/switch-to-configuration') && this.generations.closureOfSwitchScript(name) ? (a) => this.generations.switchToConfiguration(name, a) : null;
    }
  }

  private settle(reply: SimReply, timeoutMs: number): ExecResult {
    if ('hang' in reply || (reply.durationMs ?? 0) > timeoutMs) {
      this.clock += timeoutMs;
      return { status: 'timeout', exitCode: null, stdout: '', stderr: '', durationMs: timeoutMs };
    }
    const durationMs = reply.durationMs ?? 20;
    this.clock += durationMs;
    return { status: reply.exitCode === 0 ? 'ok' : 'nonzero', exitCode: reply.exitCode, stdout: reply.stdout ?? '', stderr: reply.stderr ?? '', durationMs };
  }
}
