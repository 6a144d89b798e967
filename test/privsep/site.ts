import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Envelope } from '../../src/crypto/index.js';
import { iso, makeKey, signPayload } from '../orders/fixtures.js';

/**
 * A site for the privilege-boundary tests: the real `heal-apply` CLI as root, and a real
 * unprivileged user (created by .ci/run) playing the compromised agent. Nothing here is
 * simulated but the appliance's systemctl: a stand-in script on root's PATH that keeps unit
 * states in files, so a legitimate restart is a real process run by the healer.
 */
export const AGENT_USER = 'compliance-agent-test';
/** The baseline's pinned revision (a heal of patching would build exactly this commit). */
const PINNED_REV = '5'.repeat(40);
const REPO = fileURLToPath(new URL('../..', import.meta.url));

function id(flag: '-u' | '-g'): number {
  const r = spawnSync('id', [flag, AGENT_USER], { encoding: 'utf8' });
  // Fail, never skip: the boundary is only tested against a real second user.
  if (r.status !== 0) throw new Error(`user ${AGENT_USER} is missing: create it as .ci/run does (useradd --system --user-group ${AGENT_USER})`);
  return Number(r.stdout.trim());
}

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface HealResultOut {
  readonly request_id: string | null;
  readonly order_id: string | null;
  readonly outcome: string;
  readonly reason: string | null;
  readonly action_taken: Array<{ command: string; args: string[] }>;
}

export class Site {
  readonly base: string;
  readonly healDir: string;
  readonly stateDir: string;
  readonly requests: string;
  readonly results: string;
  readonly sentinels: string;
  readonly configPath: string;
  readonly uid = id('-u');
  readonly gid = id('-g');
  private readonly bin: string;
  private readonly units: string;
  private readonly execLog: string;
  private readonly msp = makeKey('msp-2026');
  private sequence = 1000;

  constructor(config: Record<string, unknown> = {}) {
    // The agent must traverse to its drop box, so the base is 0755 (mkdtemp makes 0700).
    this.base = mkdtempSync(join(tmpdir(), 'ca-privsep-'));
    chmodSync(this.base, 0o755);
    this.healDir = join(this.base, 'heal');
    this.stateDir = join(this.base, 'agent-state');
    this.requests = join(this.healDir, 'requests');
    this.results = join(this.healDir, 'results');
    this.sentinels = join(this.base, 'sentinels');
    this.bin = join(this.base, 'bin');
    this.units = join(this.base, 'units');
    this.execLog = join(this.base, 'exec.log');
    this.configPath = join(this.base, 'config.json');
    // The agent's own state directory, as the module makes it: the agent's, 0700.
    mkdirSync(this.stateDir, { mode: 0o700 });
    chownSync(this.stateDir, this.uid, this.gid);
    this.makeSentinels();
    this.makeStandIns();
    const baselinePath = join(this.base, 'baseline.json');
    writeFileSync(
      baselinePath,
      JSON.stringify({
        version: 1,
        patching: { configurationRevision: PINNED_REV, flakeRef: `git+https://git.msp.example/sites/clinic-001?rev=${PINNED_REV}#appliance` },
        services: { required: ['clinic-app.service'] },
        backup: { unit: 'clinic-backup.service', stampFile: join(this.base, 'backup-stamp'), maxAgeHours: 26 },
        firewall: { rulesetHash: `sha256:${'0'.repeat(64)}` },
        encryption: { requiredMounts: [] },
      }),
    );
    writeFileSync(
      this.configPath,
      JSON.stringify({
        siteId: 'clinic-001',
        hostId: 'appliance-1',
        deploymentMode: 'direct',
        baselinePath,
        clientCertFile: '/run/credentials/client.crt',
        clientKeyFile: '/run/credentials/client.key',
        signingKeyFile: '/run/credentials/evidence.key',
        caFile: '/etc/compliance-agent/ca.pem',
        trustedOrderKeys: [this.msp.text],
        stateDir: this.stateDir,
        healDir: this.healDir,
        rebuildHealthCheckTimeout: 5,
        logLevel: 'INFO',
        ...config,
      }),
    );
  }

  /** Root-owned files no request may change: each test compares them byte for byte. */
  private makeSentinels(): void {
    mkdirSync(join(this.sentinels, 'root-dir'), { recursive: true, mode: 0o755 });
    writeFileSync(join(this.sentinels, 'shadow'), 'root:$6$sentinel$hash:19000:0:99999:7:::\n', { mode: 0o600 });
    writeFileSync(join(this.sentinels, 'profile'), '# root login shell profile sentinel\n', { mode: 0o644 });
    writeFileSync(join(this.sentinels, 'root-dir', 'authorized_keys'), 'ssh-ed25519 AAAAsentinel root@msp\n', { mode: 0o600 });
    writeFileSync(join(this.sentinels, 'root-dir', 'boot-entry.conf'), 'title NixOS sentinel\n', { mode: 0o644 });
    writeFileSync(join(this.sentinels, 'root-dir', 'notes'), 'not a request name\n', { mode: 0o644 });
    chmodSync(this.sentinels, 0o755);
  }

  /** Every file under the sentinels plus the machine's own /etc/shadow and /etc/passwd, hashed, and whether /etc/profile.local exists. */
  fingerprint(): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (dir: string) => {
      for (const name of readdirSync(dir).sort()) {
        const p = join(dir, name);
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        else out[p] = `${(st.mode & 0o7777).toString(8)} ${st.uid} ${st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : createHash('sha256').update(readFileSync(p)).digest('hex')}`;
      }
    };
    walk(this.sentinels);
    for (const f of ['/etc/shadow', '/etc/passwd']) out[f] = createHash('sha256').update(readFileSync(f)).digest('hex');
    let profileLocal = 'absent';
    try {
      lstatSync('/etc/profile.local');
      profileLocal = 'present';
    } catch {
      // Absent, as it must stay.
    }
    out['/etc/profile.local'] = profileLocal;
    return out;
  }

  private makeStandIns(): void {
    mkdirSync(this.bin, { mode: 0o755 });
    mkdirSync(this.units, { mode: 0o755 });
    writeFileSync(join(this.units, 'clinic-app.service'), '');
    // systemctl as the healer calls it: is-active, start, restart (after `--`), logged.
    writeFileSync(
      join(this.bin, 'systemctl'),
      `#!/bin/sh
echo "systemctl $*" >> '${this.execLog}'
verb="$1"; shift
[ "$1" = "--" ] && shift
case "$verb" in
  is-active) rc=0; for u in "$@"; do if [ -e '${this.units}'/"$u" ]; then echo active; else echo inactive; rc=3; fi; done; exit $rc ;;
  start|restart) for u in "$@"; do : > '${this.units}'/"$u"; done ;;
  *) echo "Unknown command verb '$verb'." >&2; exit 1 ;;
esac
`,
      { mode: 0o755 },
    );
  }

  stopUnit(unit: string): void {
    rmSync(join(this.units, unit), { force: true });
  }

  /** Commands the healer ran through the stand-ins that change something (start, restart). */
  actions(): string[] {
    let text = '';
    try {
      text = readFileSync(this.execLog, 'utf8');
    } catch {
      return [];
    }
    return text.split('\n').filter((l) => / (start|restart) /.test(l));
  }

  /** The real CLI as root, with the stand-ins first on PATH. */
  cli(args: string[]): Run {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'heal-apply', '--config', this.configPath, '--agent-user', AGENT_USER, ...args], {
      cwd: REPO,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${this.bin}:/usr/sbin:/usr/bin:/sbin:/bin` },
      timeout: 120_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  init(): void {
    const r = this.cli(['--init']);
    if (r.code !== 0) throw new Error(`heal-apply --init failed: ${r.stderr}`);
  }

  /** One healer run; its results as JSON. */
  heal(): HealResultOut[] {
    const r = this.cli(['--json']);
    if (r.code !== 0) throw new Error(`heal-apply exited ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout) as HealResultOut[];
  }

  /** A shell command run as the agent user: real uid and gid, no supplementary groups. */
  asAgent(script: string, input?: string, args: string[] = []): Run {
    const r = spawnSync('setpriv', [`--reuid=${this.uid}`, `--regid=${this.gid}`, '--clear-groups', 'sh', '-c', script, 'sh', ...args], {
      encoding: 'utf8',
      input,
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** A long-running attacker loop as the agent user; stop it with `kill()`. */
  asAgentInBackground(script: string): ChildProcess {
    return spawn('setpriv', [`--reuid=${this.uid}`, `--regid=${this.gid}`, '--clear-groups', 'sh', '-c', script], { stdio: 'ignore', detached: true });
  }

  order(type: string, params: Record<string, unknown>, overrides: Record<string, unknown> = {}): { env: Envelope; orderId: string; sequence: number } {
    const now = Date.now();
    const sequence = (overrides.sequence as number | undefined) ?? ++this.sequence;
    const payload = {
      order_id: randomUUID(),
      site_id: 'clinic-001',
      host_id: 'appliance-1',
      sequence,
      issued_at: iso(now - 1000),
      expires_at: iso(now + 600_000),
      policy_version: '1.0',
      type,
      params,
      ...overrides,
    };
    return { env: signPayload(payload, this.msp.secret), orderId: payload.order_id, sequence };
  }

  /** The request a legitimate agent writes for a restart of clinic-app.service. */
  restartRequest(order = this.order('heal', { checks: ['services'] })): { text: string; requestId: string; orderId: string } {
    const requestId = randomUUID();
    const text = JSON.stringify({
      version: 1,
      request_id: requestId,
      created_at: iso(Date.now()),
      envelope: order.env,
      plan: { order_id: order.orderId, actions: [{ kind: 'restart_unit', unit: 'clinic-app.service' }] },
    });
    return { text, requestId, orderId: order.orderId };
  }

  /** Drop a file into the drop box as the agent does: its own temp name, then renamed. */
  drop(name: string, text: string): void {
    const r = this.asAgent(`umask 027; cat > '${this.requests}/.drop.tmp' && mv '${this.requests}/.drop.tmp' '${this.requests}/${name}'`, text);
    if (r.code !== 0) throw new Error(`drop as ${AGENT_USER} failed: ${r.stderr}`);
  }

  cleanup(): void {
    rmSync(this.base, { recursive: true, force: true });
  }
}
