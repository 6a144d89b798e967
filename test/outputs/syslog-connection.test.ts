import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { SyslogSink } from '../../src/outputs/index.js';
import { SyslogConnection } from '../../src/outputs/syslog-connection.js';
import { tempDir } from '../helpers/tmp.js';
import { EvidenceQueue } from './evidence-queue.js';

/** A TCP peer that reads octet-counted frames with its own parser and counts connections. */
class FrameReceiver {
  readonly frames: string[] = [];
  readonly sockets: Socket[] = [];
  connections = 0;
  private waiters: (() => void)[] = [];
  private constructor(readonly server: Server) {}

  static async start(): Promise<FrameReceiver> {
    const server = createServer((s) => self.accept(s));
    const self = new FrameReceiver(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return self;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  private accept(s: Socket): void {
    this.connections++;
    this.sockets.push(s);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp < 0) return;
        const len = Number(buf.subarray(0, sp).toString());
        if (!Number.isInteger(len) || len <= 0) throw new Error(`bad frame length ${buf.subarray(0, sp).toString()}`);
        if (buf.length < sp + 1 + len) return;
        this.frames.push(buf.subarray(sp + 1, sp + 1 + len).toString('utf8'));
        buf = buf.subarray(sp + 1 + len);
        this.waiters.splice(0).forEach((w) => w());
      }
    });
    s.on('error', () => undefined);
  }

  async waitForFrames(n: number, limitMs = 10_000): Promise<void> {
    const deadline = Date.now() + limitMs;
    while (this.frames.length < n) {
      if (Date.now() > deadline) throw new Error(`received ${this.frames.length} of ${n} frames`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  dropConnections(): void {
    for (const s of this.sockets.splice(0)) s.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise((r) => this.server.close(r));
  }
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: { idleCloseMs?: number } = {}) {
  const dir = tempDir('ca-sysconn-');
  const q = new EvidenceQueue(dir.path);
  const rx = await FrameReceiver.start();
  const sink = new SyslogSink({ target: { protocol: 'tcp', host: '127.0.0.1', port: rx.port }, ...opts });
  cleanups.push(
    dir.cleanup,
    () => q.close(),
    () => rx.close(),
    () => sink.close(),
  );
  return { q, rx, sink };
}

const bundleIdOf = (frame: string): string => /bundle_id="([^"]+)"/.exec(frame)![1]!;

describe('syslog connection', () => {
  it('reuses one connection across flushes', async () => {
    const { q, rx, sink } = await setup();
    for (let i = 0; i < 3; i++) {
      q.add(['syslog'], [{}, {}]);
      expect(await q.flush('syslog', sink.deliver)).toMatchObject({ delivered: 2 });
    }
    await rx.waitForFrames(6);
    expect(rx.connections).toBe(1);
  });

  it('serves concurrent writes one after another on one connection', async () => {
    const rx = await FrameReceiver.start();
    const conn = new SyslogConnection({ target: { protocol: 'tcp', host: '127.0.0.1', port: rx.port } });
    cleanups.push(
      () => rx.close(),
      () => conn.close(),
    );
    const batches = Array.from({ length: 5 }, (_, b) => Array.from({ length: 20 }, (_, i) => Buffer.from(`${b}-${i}`)));
    const framed = batches.map((frames) => frames.map((f) => Buffer.concat([Buffer.from(`${f.length} `), f])));
    const outcomes = await Promise.all(framed.map((frames) => conn.write(frames)));
    expect(outcomes).toEqual(batches.map(() => ({ written: 20, error: null })));
    await rx.waitForFrames(100);
    expect(rx.frames).toEqual(batches.flat().map((f) => f.toString()));
    expect(rx.connections).toBe(1);
  });

  it('reconnects after the receiver closed the connection, without losing or reordering', async () => {
    const { q, rx, sink } = await setup();
    const first = q.add(['syslog'], [{}, {}]);
    await q.flush('syslog', sink.deliver);
    await rx.waitForFrames(2);
    const closed = once(rx.sockets[0]!, 'close');
    rx.dropConnections();
    await closed;
    const second = q.add(['syslog'], [{}, {}, {}]);
    q.advance();
    // The first attempt may hit the dead socket (retry) or reconnect at once; either way nothing is lost.
    for (let i = 0; i < 3 && q.stats('syslog').pending > 0; i++) {
      await q.flush('syslog', sink.deliver);
      q.advance();
    }
    await rx.waitForFrames(5);
    expect(rx.frames.map(bundleIdOf)).toEqual([...first, ...second].map((b) => b.bundle.bundle_id));
    expect(rx.connections).toBe(2);
  });

  it('closes an idle connection and opens a new one for the next message', async () => {
    const { q, rx, sink } = await setup({ idleCloseMs: 50 });
    q.add(['syslog'], [{}]);
    await q.flush('syslog', sink.deliver);
    await rx.waitForFrames(1);
    await once(rx.sockets[0]!, 'close');
    q.add(['syslog'], [{}]);
    expect(await q.flush('syslog', sink.deliver)).toMatchObject({ delivered: 1 });
    await rx.waitForFrames(2);
    expect(rx.connections).toBe(2);
  });

  it('gives up on a receiver that stopped reading instead of hanging, and says so', async () => {
    const rx = await FrameReceiver.start();
    const paused: Socket[] = [];
    rx.server.removeAllListeners('connection');
    rx.server.on('connection', (s: Socket) => {
      s.pause();
      paused.push(s);
    });
    cleanups.push(
      () => rx.close(),
      () => paused.forEach((s) => s.destroy()),
    );
    const conn = new SyslogConnection({ target: { protocol: 'tcp', host: '127.0.0.1', port: rx.port }, writeTimeoutMs: 300 });
    cleanups.push(() => conn.close());
    const frames = Array.from({ length: 800 }, () => Buffer.alloc(64 * 1024, 0x41));
    const outcome = await conn.write(frames);
    expect(outcome.written).toBeLessThan(frames.length);
    expect(outcome.error).toBe(`tcp://127.0.0.1:${rx.port} took no data for 300 ms (receiver not reading)`);
  });

  it('reports a refused connection as one line and writes nothing', async () => {
    const rx = await FrameReceiver.start();
    const port = rx.port;
    await rx.close();
    const conn = new SyslogConnection({ target: { protocol: 'tcp', host: '127.0.0.1', port } });
    expect(await conn.write([Buffer.from('5 hello')])).toEqual({ written: 0, error: `connection to tcp://127.0.0.1:${port} refused (ECONNREFUSED)` });
  });

  it('names the connect timeout it gave up after, in the words the MCP and the webhook use', async () => {
    // Accepts TCP and never answers the TLS ClientHello: only the connect timeout ends it.
    const held: Socket[] = [];
    const silent = createServer((s) => held.push(s));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as { port: number }).port;
    cleanups.push(() => {
      held.forEach((s) => s.destroy());
      silent.close();
    });
    const conn = new SyslogConnection({ target: { protocol: 'tls', host: '127.0.0.1', port }, ca: 'unused', caFile: '/etc/siem-ca.pem', connectTimeoutMs: 300 });
    cleanups.push(() => conn.close());
    expect(await conn.write([Buffer.from('5 hello')])).toEqual({ written: 0, error: `connecting to tls://127.0.0.1:${port} timed out after 300 ms (ETIMEDOUT)` });
  });
});
