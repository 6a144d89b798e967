import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { AgentError } from '../common/index.js';
import type { SyslogTarget } from '../config/index.js';
import { describeTransportError, type Peer } from '../delivery/index.js';

export interface SyslogConnectionOptions {
  readonly target: SyslogTarget;
  /** The only trust anchor for a tls:// receiver (syslogCaFile); required for tls. */
  readonly ca?: string | Buffer;
  /** Named in TLS failure messages. */
  readonly caFile?: string;
  /** TCP connect plus TLS handshake. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Longest wait for the kernel to take the next frame (a receiver that stopped reading). Default 15 s. */
  readonly writeTimeoutMs?: number;
  /**
   * Close the connection after this long without messages. A connection idle for minutes may
   * have been dropped by a NAT or firewall on the way, and a write into it would look sent
   * while going nowhere. Default 30 s.
   */
  readonly idleCloseMs?: number;
}

export interface WriteOutcome {
  /** How many frames, from the first, the kernel accepted. */
  readonly written: number;
  /** Why the rest were not written; null when all were. */
  readonly error: string | null;
}

const DEFAULTS = { connectTimeoutMs: 10_000, writeTimeoutMs: 15_000, idleCloseMs: 30_000 };

/**
 * One stream to the syslog receiver, reused across messages and reconnected on demand. TCP has no
 * application acknowledgement: a frame counts as delivered once the socket's write callback
 * reports it handed to the kernel. A receiver never sends anything back, so any end of its side
 * of the stream marks the connection dead before the next write.
 */
export class SyslogConnection {
  private socket: Socket | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  /** What ended the current connection, for the message of the writes it cut off. */
  private lastError: unknown = null;
  private turn: Promise<unknown> = Promise.resolve();
  private readonly peer: Peer;

  constructor(private readonly opts: SyslogConnectionOptions) {
    if (opts.target.protocol === 'tls' && opts.ca === undefined) throw new AgentError('config_invalid', 'a tls:// syslog target needs a CA');
    const host = isIP(opts.target.host) === 6 ? `[${opts.target.host}]` : opts.target.host;
    this.peer = {
      name: `${opts.target.protocol}://${host}:${opts.target.port}`,
      hostname: opts.target.host,
      trust: `the CA in ${opts.caFile ?? 'syslogCaFile'}`,
      timeouts: { connectMs: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs },
    };
  }

  get endpoint(): string {
    return this.peer.name;
  }

  /**
   * Write frames in order on the live connection (connecting first if needed). Calls are served
   * one after another, so two flushes can never interleave frames or open two connections.
   */
  write(frames: readonly Buffer[]): Promise<WriteOutcome> {
    const turn = this.turn.then(() => this.writeNow(frames));
    this.turn = turn;
    return turn;
  }

  private async writeNow(frames: readonly Buffer[]): Promise<WriteOutcome> {
    this.clearIdle();
    let socket: Socket;
    try {
      socket = (await this.stillLive()) ?? (await this.connect());
    } catch (e) {
      return { written: 0, error: describeTransportError(e, this.peer).message };
    }
    const outcome = await this.writeOn(socket, frames);
    this.armIdle();
    return outcome;
  }

  /** Graceful close (TLS close_notify, then FIN). */
  close(): void {
    this.clearIdle();
    const s = this.socket;
    this.socket = null;
    if (s && !s.destroyed) {
      s.end();
      setTimeout(() => s.destroy(), 2_000).unref();
    }
  }

  /**
   * The current connection if the receiver has not closed it. A close it sent while we were idle
   * is only seen once the event loop has read it: let it run first, or the next frames would go
   * into a connection the receiver already left, and be lost while looking written (the check
   * rsyslog's own forwarder makes with a peeking recv before each send).
   */
  private async stillLive(): Promise<Socket | null> {
    if (!this.live()) return null;
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    return this.live();
  }

  private live(): Socket | null {
    const s = this.socket;
    if (s && !s.destroyed && s.writable && !s.readableEnded) return s;
    if (s) s.destroy();
    this.socket = null;
    return null;
  }

  private connect(): Promise<Socket> {
    const { protocol, host, port } = this.opts.target;
    const timeoutMs = this.opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    return new Promise((resolve, reject) => {
      const s =
        protocol === 'tls'
          ? tlsConnect({
              host,
              port,
              ca: this.opts.ca,
              rejectUnauthorized: true,
              minVersion: 'TLSv1.2',
              // SNI carries DNS names only (RFC 6066); an IP is checked against the cert's IP SANs.
              ...(isIP(host) ? {} : { servername: host }),
            })
          : tcpConnect({ host, port });
      const timer = setTimeout(() => s.destroy(Object.assign(new Error(`connect timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs);
      const onError = (e: Error): void => {
        clearTimeout(timer);
        s.destroy();
        reject(e);
      };
      s.once('error', onError);
      s.once(protocol === 'tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.off('error', onError);
        s.setNoDelay(true);
        s.setKeepAlive(true, 15_000);
        // Receivers send nothing: discard anything that comes, and treat their end as the end.
        s.on('data', () => undefined);
        s.on('end', () => s.destroy());
        s.on('error', (e) => {
          this.lastError = e;
          s.destroy();
        });
        s.on('close', () => {
          if (this.socket === s) this.socket = null;
        });
        this.socket = s;
        this.lastError = null;
        resolve(s);
      });
    });
  }

  private writeOn(socket: Socket, frames: readonly Buffer[]): Promise<WriteOutcome> {
    const timeoutMs = this.opts.writeTimeoutMs ?? DEFAULTS.writeTimeoutMs;
    return new Promise((resolve) => {
      let written = 0;
      let done = false;
      let timer: NodeJS.Timeout;
      const finish = (error: string | null): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.off('close', onClose);
        resolve({ written, error });
      };
      const fail = (e: unknown): void => {
        socket.destroy();
        finish(describeTransportError(e, this.peer).message);
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          socket.destroy();
          finish(`${this.peer.name} took no data for ${timeoutMs} ms (receiver not reading)`);
        }, timeoutMs);
      };
      const onClose = (): void => {
        if (written === frames.length) return finish(null);
        finish(this.lastError ? describeTransportError(this.lastError, this.peer).message : `connection to ${this.peer.name} closed by the receiver`);
      };
      socket.once('close', onClose);
      arm();
      for (const frame of frames) {
        socket.write(frame, (e) => {
          if (done) return;
          if (e) return fail(e);
          written++;
          if (written === frames.length) finish(null);
          else arm();
        });
      }
      if (frames.length === 0) finish(null);
    });
  }

  private armIdle(): void {
    this.clearIdle();
    const ms = this.opts.idleCloseMs ?? DEFAULTS.idleCloseMs;
    this.idleTimer = setTimeout(() => this.close(), ms);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}
