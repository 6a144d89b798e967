import { fail, ok, type SimReply } from './reply.js';

/** service: long-running; oneshot: runs then goes inactive (a backup); exited: oneshot with RemainAfterExit (nftables). */
export type UnitKind = 'service' | 'oneshot' | 'exited';
export type ActiveState = 'active' | 'inactive' | 'failed' | 'activating' | 'deactivating';

export interface UnitState {
  readonly kind: UnitKind;
  active: ActiveState;
  sub: string;
}

function idleState(kind: UnitKind): Pick<UnitState, 'active' | 'sub'> {
  if (kind === 'service') return { active: 'active', sub: 'running' };
  if (kind === 'exited') return { active: 'active', sub: 'exited' };
  return { active: 'inactive', sub: 'dead' };
}

const UNIT_RE = /^[A-Za-z0-9@:._\\-]+\.(service|timer|socket|target|mount|path)$/;

/** Runtime state of systemd units and the `systemctl` verbs the agent and healer use. */
export class UnitTable {
  private readonly units = new Map<string, UnitState>();
  /** Units whose start/restart fails (a broken config, a crashing binary). */
  private readonly brokenByHand = new Set<string>();
  private brokenByGeneration = new Set<string>();

  /** onStarted(unit, afterMs): the unit finished starting afterMs into the systemctl call. */
  constructor(private readonly onStarted: (unit: string, afterMs: number) => void) {}

  /** Set the units a generation brings, as activation leaves them. */
  activate(units: Readonly<Record<string, UnitKind>>, broken: readonly string[]): void {
    this.units.clear();
    this.brokenByGeneration = new Set(broken);
    for (const [name, kind] of Object.entries(units)) {
      this.units.set(name, { kind, ...(this.isBroken(name) ? { active: 'failed', sub: 'failed' } : idleState(kind)) });
    }
  }

  get(unit: string): UnitState | undefined {
    return this.units.get(unit);
  }

  names(): string[] {
    return [...this.units.keys()];
  }

  set(unit: string, active: ActiveState, sub: string): void {
    const u = this.units.get(unit);
    if (!u) throw new Error(`simulated host has no unit ${unit}`);
    u.active = active;
    u.sub = sub;
  }

  setBroken(unit: string, broken: boolean): void {
    if (broken) this.brokenByHand.add(unit);
    else this.brokenByHand.delete(unit);
  }

  isBroken(unit: string): boolean {
    return this.brokenByHand.has(unit) || this.brokenByGeneration.has(unit);
  }

  systemctl(args: readonly string[]): SimReply {
    const [verb, ...after] = args;
    // `--` ends the options, as in systemctl: what follows are unit names even if they look like options.
    const rest = after[0] === '--' ? after.slice(1) : after;
    switch (verb) {
      case 'is-active':
        return this.isActive(rest);
      case 'show':
        return this.show(rest);
      case 'start':
      case 'restart':
        return this.startOrRestart(verb, rest);
      case 'stop':
        return this.stop(rest);
      case undefined:
        return fail(1, 'systemctl: this simulated host does not list units\n');
      default:
        return fail(1, `Unknown command verb '${verb}'.\n`);
    }
  }

  private isActive(units: readonly string[]): SimReply {
    if (units.length === 0) return fail(1, 'Too few arguments.\n');
    const states = units.map((u) => this.units.get(u)?.active ?? 'inactive');
    // systemctl is-active exits 0 when at least one unit is active, 3 otherwise.
    return { exitCode: states.includes('active') ? 0 : 3, stdout: states.map((s) => `${s}\n`).join(''), stderr: '' };
  }

  private show(args: readonly string[]): SimReply {
    let props: string[] | null = null;
    let valueOnly = false;
    const units: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-p' || a === '--property') props = (args[++i] ?? '').split(',');
      else if (a.startsWith('--property=')) props = a.slice('--property='.length).split(',');
      else if (a === '--value') valueOnly = true;
      else units.push(a);
    }
    if (units.length !== 1 || !props) return fail(1, 'simulated systemctl show needs -p PROPS and one unit\n');
    const u = this.units.get(units[0]!);
    const values: Record<string, string> = {
      ActiveState: u?.active ?? 'inactive',
      SubState: u?.sub ?? 'dead',
      LoadState: u ? 'loaded' : 'not-found',
      Result: u?.active === 'failed' ? 'exit-code' : 'success',
    };
    const lines = props.map((p) => (valueOnly ? (values[p] ?? '') : `${p}=${values[p] ?? ''}`));
    return ok(lines.map((l) => `${l}\n`).join(''), 15);
  }

  private startOrRestart(verb: 'start' | 'restart', units: readonly string[]): SimReply {
    if (units.length === 0) return fail(1, 'Too few arguments.\n');
    let duration = 0;
    for (const name of units) {
      if (!UNIT_RE.test(name)) return fail(1, `Failed to ${verb} ${name}: Unit name ${name} is not valid.\n`);
      const u = this.units.get(name);
      if (!u) return fail(5, `Failed to ${verb} ${name}: Unit ${name} not found.\n`);
      if (verb === 'start' && u.active === 'active') continue;
      duration += u.kind === 'oneshot' ? 30_000 : 800;
      if (this.isBroken(name)) {
        u.active = 'failed';
        u.sub = 'failed';
        return {
          exitCode: 1,
          stdout: '',
          stderr: `Job for ${name} failed because the control process exited with error code.\nSee "systemctl status ${name}" and "journalctl -xeu ${name}" for details.\n`,
          durationMs: duration,
        };
      }
      Object.assign(u, idleState(u.kind));
      this.onStarted(name, duration);
    }
    return { exitCode: 0, stdout: '', stderr: '', durationMs: duration || 20 };
  }

  private stop(units: readonly string[]): SimReply {
    for (const name of units) {
      const u = this.units.get(name);
      if (!u) return fail(5, `Failed to stop ${name}: Unit ${name} not loaded.\n`);
      u.active = 'inactive';
      u.sub = 'dead';
    }
    return ok('', 300);
  }
}
