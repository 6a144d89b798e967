import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

/** One message as rsyslog parsed it: its RFC 5424 fields and mmpstrucdata's reading of the SD. */
export interface Received {
  readonly input: 'tcp' | 'tls' | 'rogue';
  readonly pri: number;
  readonly facility: number;
  readonly severity: number;
  readonly version: string;
  readonly timestamp: string;
  readonly hostname: string;
  readonly app: string;
  readonly procid: string;
  readonly msgid: string;
  /** STRUCTURED-DATA as received (escaped form). */
  readonly sd: string;
  readonly msg: string;
  /** SD elements as rsyslog's mmpstrucdata parsed and unescaped them: id → param → value. */
  readonly parsed: Record<string, Record<string, string>>;
}

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface RsyslogOptions {
  /** A TLS listener (gtls driver) with this server certificate. */
  readonly tls?: TlsFiles;
  /** A second TLS listener whose certificate comes from another CA. */
  readonly rogueTls?: TlsFiles;
}

const STARTUP_LIMIT_MS = 15_000;

function input(name: string, portFile: string, port: number | undefined, tls?: TlsFiles): string {
  const driver = tls
    ? ` streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"` +
      ` streamDriver.CAFile="${tls.ca}" streamDriver.CertFile="${tls.cert}" streamDriver.KeyFile="${tls.key}"`
    : '';
  return `input(type="imtcp" name="${name}" port="${port ?? 0}" listenPortFileName="${portFile}" ruleset="out"${driver})\n`;
}

/**
 * A real rsyslogd on loopback, started by the test with its own config, work directory and pid
 * file: imtcp listeners (plain, TLS, rogue TLS) on free ports, a ruleset that runs mmpstrucdata and
 * writes every parsed field as one JSON line. A missing rsyslogd fails the test that starts it.
 */
export class Rsyslog {
  private child: ChildProcess | null = null;
  private stderr = '';
  ports: { tcp: number; tls?: number; rogue?: number } = { tcp: 0 };
  readonly outFile: string;

  private constructor(
    private readonly dir: string,
    private readonly opts: RsyslogOptions,
  ) {
    this.outFile = join(dir, 'received.jsonl');
  }

  static async start(dir: string, opts: RsyslogOptions = {}): Promise<Rsyslog> {
    mkdirSync(join(dir, 'work'), { recursive: true });
    const r = new Rsyslog(dir, opts);
    await r.launch();
    return r;
  }

  private config(fixed: boolean): string {
    const p = (name: 'tcp' | 'tls' | 'rogue'): number | undefined => (fixed ? this.ports[name] : undefined);
    return `global(workDirectory="${join(this.dir, 'work')}" maxMessageSize="8k")
module(load="imtcp")
module(load="mmpstrucdata")
template(name="dump" type="list" option.jsonf="on") {
  property(outname="input" name="inputname" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timestamp" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="parsed" name="$!rfc5424-sd" format="jsonf")
}
ruleset(name="out") {
  action(type="mmpstrucdata")
  action(type="omfile" file="${this.outFile}" template="dump")
}
${input('tcp', join(this.dir, 'port-tcp'), p('tcp'))}${this.opts.tls ? input('tls', join(this.dir, 'port-tls'), p('tls'), this.opts.tls) : ''}${
      this.opts.rogueTls ? input('rogue', join(this.dir, 'port-rogue'), p('rogue'), this.opts.rogueTls) : ''
    }`;
  }

  private async launch(fixedPorts = false): Promise<void> {
    const conf = join(this.dir, 'rsyslog.conf');
    for (const f of ['port-tcp', 'port-tls', 'port-rogue']) writeFileSync(join(this.dir, f), '');
    writeFileSync(conf, this.config(fixedPorts));
    this.stderr = '';
    const child = spawn(rsyslogdPath(), ['-n', '-f', conf, '-i', join(this.dir, 'rsyslogd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const spawnError = new Promise<never>((_, reject) =>
      child.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(e.code === 'ENOENT' ? 'rsyslogd is not installed (Debian packages rsyslog and rsyslog-gnutls)' : `rsyslogd failed to start: ${e.message}`)),
      ),
    );
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`rsyslogd exited (${code}) during start: ${this.stderr.trim()}`))));
    const wanted: ('tcp' | 'tls' | 'rogue')[] = ['tcp', ...(this.opts.tls ? (['tls'] as const) : []), ...(this.opts.rogueTls ? (['rogue'] as const) : [])];
    const ready = (async () => {
      const deadline = Date.now() + STARTUP_LIMIT_MS;
      for (;;) {
        // rsyslog writes the port files only for port 0; on a restart with fixed ports, probe them.
        if (fixedPorts) {
          if ((await Promise.all(wanted.map((w) => accepts(this.ports[w]!)))).every(Boolean)) return;
        } else {
          const ports = wanted.map((w) => Number(readFileSync(join(this.dir, `port-${w}`), 'utf8').trim() || 0));
          if (ports.every((p) => p > 0)) {
            wanted.forEach((w, i) => (this.ports[w] = ports[i]!));
            return;
          }
        }
        if (Date.now() > deadline) throw new Error(`rsyslogd did not open its listeners within ${STARTUP_LIMIT_MS} ms: ${this.stderr.trim()}`);
        await sleep(25);
      }
    })();
    await Promise.race([ready, spawnError, exited]);
    child.removeAllListeners('exit');
  }

  /** Stop the receiver (SIGTERM) and wait until it has exited and its ports are closed. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    await gone;
  }

  /** Start again on the same ports (a receiver back after an outage). */
  async restart(): Promise<void> {
    await this.launch(true);
  }

  records(): Received[] {
    if (!existsSync(this.outFile)) return [];
    return readFileSync(this.outFile, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => {
        const raw = JSON.parse(l) as Record<string, string>;
        return {
          input: raw.input as Received['input'],
          pri: Number(raw.pri),
          facility: Number(raw.facility),
          severity: Number(raw.severity),
          version: raw.version!,
          timestamp: raw.timestamp!,
          hostname: raw.hostname!,
          app: raw.app!,
          procid: raw.procid!,
          msgid: raw.msgid!,
          sd: raw.sd!,
          msg: raw.msg!,
          parsed: raw.parsed ? (JSON.parse(raw.parsed) as Received['parsed']) : {},
        };
      });
  }

  /** Wait until rsyslog has written at least `n` records (it writes asynchronously). */
  async waitForRecords(n: number, limitMs = 20_000): Promise<Received[]> {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const got = this.records();
      if (got.length >= n) return got;
      if (Date.now() > deadline) throw new Error(`rsyslog wrote ${got.length} of ${n} expected records; rsyslogd said: ${this.stderr.trim() || '(nothing)'}`);
      await sleep(50);
    }
  }
}

/** rsyslogd lives in /usr/sbin, which a non-root PATH often lacks. */
function rsyslogdPath(): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'].filter(Boolean);
  return dirs.map((d) => join(d, 'rsyslogd')).find((p) => existsSync(p)) ?? 'rsyslogd';
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
