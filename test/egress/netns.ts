import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RealHost, type ExecOptions, type ExecResult, type FileStat, type Host, type ReadResult } from '../../src/host/index.js';
import { run } from '../nix/nix.js';

const FIXTURES = resolve(import.meta.dirname, 'fixtures');

/** The Host port with every command run inside a network namespace (`ip netns exec NS ...`). */
export class NetnsHost implements Host {
  private readonly inner = new RealHost();
  constructor(readonly ns: string) {}
  exec(command: string, args: readonly string[], options: ExecOptions): Promise<ExecResult> {
    return this.inner.exec('ip', ['netns', 'exec', this.ns, command, ...args], options);
  }
  readFile(path: string, maxBytes?: number): Promise<ReadResult> {
    return this.inner.readFile(path, maxBytes);
  }
  stat(path: string): Promise<FileStat | null> {
    return this.inner.stat(path);
  }
  readlink(path: string): Promise<string | null> {
    return this.inner.readlink(path);
  }
  realpath(path: string): Promise<string | null> {
    return this.inner.realpath(path);
  }
  now(): number {
    return this.inner.now();
  }
  hostname(): string {
    return this.inner.hostname();
  }
}

export interface Probe {
  readonly ok: boolean;
  readonly error?: string;
  readonly addresses?: string[];
}

/**
 * Two namespaces `ca-test-<random>-c` (the appliance, where the ruleset goes) and `-s` (its
 * network: MCP, resolver, NTP), joined by a veth pair, IPv4 and IPv6. Namespace files under
 * /etc/netns/<client>/ are bind-mounted over /etc by `ip netns exec`, which gives the client
 * its own resolv.conf pointing at the server side.
 */
export class NetnsPair {
  readonly id = randomBytes(3).toString('hex');
  readonly client = `ca-test-${this.id}-c`;
  readonly server = `ca-test-${this.id}-s`;
  private readonly octet = (parseInt(this.id.slice(0, 2), 16) % 200) + 20;
  readonly serverIp4 = `10.${this.octet}.0.1`;
  /** A second server address that is not a configured resolver. */
  readonly otherIp4 = `10.${this.octet}.0.3`;
  readonly clientIp4 = `10.${this.octet}.0.2`;
  /** Groups without leading zeros, as nft and the resolver print them (a random `02` once failed a comparison). */
  private readonly prefix6 = `fd00:ca:${parseInt(this.id.slice(0, 4), 16).toString(16)}:${parseInt(this.id.slice(4), 16).toString(16)}`;
  readonly serverIp6 = `${this.prefix6}::1`;
  readonly clientIp6 = `${this.prefix6}::2`;
  private readonly etcDir = `/etc/netns/${this.client}`;
  private servers: ChildProcess[] = [];

  setUp(): void {
    const vc = `cav${this.id}c`;
    const vs = `cav${this.id}s`;
    run('ip', ['netns', 'add', this.client]);
    run('ip', ['netns', 'add', this.server]);
    run('ip', ['link', 'add', vc, 'type', 'veth', 'peer', 'name', vs]);
    run('ip', ['link', 'set', vc, 'netns', this.client]);
    run('ip', ['link', 'set', vs, 'netns', this.server]);
    const inNs = (ns: string, ...args: string[]) => run('ip', ['-n', ns, ...args]);
    inNs(this.client, 'addr', 'add', `${this.clientIp4}/24`, 'dev', vc);
    inNs(this.client, 'addr', 'add', `${this.clientIp6}/64`, 'dev', vc, 'nodad');
    inNs(this.server, 'addr', 'add', `${this.serverIp4}/24`, 'dev', vs);
    inNs(this.server, 'addr', 'add', `${this.otherIp4}/24`, 'dev', vs);
    inNs(this.server, 'addr', 'add', `${this.serverIp6}/64`, 'dev', vs, 'nodad');
    for (const [ns, dev] of [
      [this.client, vc],
      [this.server, vs],
    ] as const) {
      inNs(ns, 'link', 'set', 'lo', 'up');
      inNs(ns, 'link', 'set', dev, 'up');
    }
    mkdirSync(this.etcDir, { recursive: true });
    writeFileSync(join(this.etcDir, 'resolv.conf'), `nameserver ${this.serverIp4}\noptions timeout:1 attempts:1\n`);
  }

  /** Start the peer server in the server namespace; resolves once it listens. */
  startPeer(spec: { tcp: number[]; udpEcho: number[]; dnsPort: number; zoneFile: string }): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', this.server, process.execPath, join(FIXTURES, 'peer-server.mjs'), JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.servers.push(child);
    return new Promise((resolveReady, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolveReady();
      });
      child.once('exit', (code) => reject(new Error(`peer server exited (${code}): ${err}`)));
    });
  }

  /** Run the probe in the client namespace, optionally as another user (setpriv). */
  probe(args: string[], asUid?: number): Probe {
    const probe = [process.execPath, join(FIXTURES, 'probe.mjs'), ...args];
    const command = asUid === undefined ? probe : ['setpriv', `--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups', ...probe];
    const r = spawnSync('ip', ['netns', 'exec', this.client, ...command], { encoding: 'utf8', timeout: 30_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (!line.startsWith('{')) throw new Error(`probe ${args.join(' ')} printed no result (exit ${r.status}): ${r.stderr}`);
    return JSON.parse(line) as Probe;
  }

  nft(args: string[], input?: string): string {
    return run('ip', ['netns', 'exec', this.client, 'nft', ...args], input === undefined ? {} : { input });
  }

  /** Elements of a set in the client's table, sorted. */
  setElements(table: string, set: string): string[] {
    const json = JSON.parse(this.nft(['-j', 'list', 'set', 'inet', table, set])) as { nftables: Array<{ set?: { elem?: unknown[] } }> };
    const elems = json.nftables.find((o) => o.set)?.set?.elem ?? [];
    return elems.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).sort();
  }

  /** Packets counted by the drop rule of the egress chain. */
  dropCount(table: string): number {
    const listing = this.nft(['list', 'chain', 'inet', table, 'egress']);
    const m = /counter packets (\d+) bytes \d+ drop/.exec(listing);
    if (!m) throw new Error(`no counted drop rule in the egress chain:\n${listing}`);
    return Number(m[1]);
  }

  /** Best effort on every part, then report what could not be removed. */
  cleanup(): void {
    for (const s of this.servers) s.kill('SIGKILL');
    const failures: string[] = [];
    for (const ns of [this.client, this.server]) {
      const r = spawnSync('ip', ['netns', 'del', ns], { encoding: 'utf8' });
      if (r.status !== 0 && !/No such file/.test(r.stderr)) failures.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
    }
    rmSync(this.etcDir, { recursive: true, force: true });
    if (failures.length > 0) throw new Error(failures.join('\n'));
  }
}
