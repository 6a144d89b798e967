import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../testing/index.js';
import { silentLogger } from '../../src/common/index.js';
import { createSinks, type Sinks } from '../../src/outputs/index.js';
import { tempDir } from '../helpers/tmp.js';
import { Rsyslog } from './rsyslog.js';
import { WebhookReceiver } from './webhook-receiver.js';

const tmp = tempDir('ca-agent-sinks-');
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

/** A dead RMM: accepts TCP connections and never says a word (the TLS handshake never completes). */
class BlackHole {
  readonly held: Socket[] = [];
  private constructor(readonly server: Server) {}
  static async start(): Promise<BlackHole> {
    const server = createServer((s) => {
      s.on('error', () => undefined);
      self.held.push(s);
    });
    const self = new BlackHole(server);
    server.listen(0);
    await once(server, 'listening');
    return self;
  }
  get port(): number {
    return (this.server.address() as { port: number }).port;
  }
  async close(): Promise<void> {
    for (const s of this.held) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

let h: Harness;
let hole: BlackHole;
let rsyslog: Rsyslog;
let sinks: Sinks;

beforeAll(async () => {
  hole = await BlackHole.start();
  rsyslog = await Rsyslog.start(join(tmp.path, 'rsyslog'));
  const secretFile = join(tmp.path, 'webhook.secret');
  writeFileSync(secretFile, SECRET, { mode: 0o600 });
  h = await startHarness(join(tmp.path, 'site'), {
    config: {
      deploymentMode: 'reseller',
      resellerId: 'msp-alpha',
      allowedHosts: ['localhost', '127.0.0.1'],
      rmmWebhookUrl: `https://localhost:${hole.port}/rmm/hook`,
      webhookSecretFile: secretFile,
      syslogTarget: `tcp://127.0.0.1:${rsyslog.ports.tcp}`,
    },
  });
});

afterAll(async () => {
  await sinks?.close();
  await h?.close();
  await hole?.close();
  await rsyslog?.stop();
  tmp.cleanup();
});

async function until(what: string, cond: () => boolean, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('reseller sinks in the agent', () => {
  it('a dead RMM webhook never delays evidence to the MCP or syslog; its backlog is delivered in order once it answers', async () => {
    sinks = createSinks(h.config, silentLogger, {
      // Long enough that only the black hole's release ends the webhook attempt.
      webhook: { ca: readFileSync(h.pki.caCert), connectTimeoutMs: 120_000, requestTimeoutMs: 120_000 },
    });
    expect(sinks.destinations).toEqual(['webhook', 'syslog']);
    const rt = h.openAgent({ extra: { sinks: sinks.deliver } });

    let settled = false;
    const cycle = rt.agent.cycle().finally(() => (settled = true));
    await until('the MCP to hold the first cycle', () => h.mcp.stats().unique === 6);
    await until('rsyslog to write the first cycle', () => rsyslog.records().length === 6);
    // Both arrived while the webhook attempt is still stuck in the black hole.
    // The webhook's connection may reach the hole after those two finished: wait for it, not race it.
    await until('the webhook attempt to reach the black hole', () => hole.held.length > 0);
    expect(settled).toBe(false);

    for (const s of hole.held) s.destroy();
    const report = await cycle;
    expect(report.bundles).toBe(6);
    expect(report.flushed).toEqual({ mcp: 6, webhook: 0, syslog: 6 });
    const queue = Object.fromEntries(rt.agent.outbox.stats(h.host.now()).map((s) => [s.destination, s]));
    expect(queue.mcp).toMatchObject({ done: 6, pending: 0 });
    expect(queue.syslog).toMatchObject({ done: 6, pending: 0 });
    expect(queue.webhook).toMatchObject({ done: 0, pending: 6, dead: 0 });

    // The RMM comes back on the same address.
    const port = hole.port;
    await hole.close();
    const rmm = await WebhookReceiver.startOn(port, { cert: h.pki.serverCert, key: h.pki.serverKey }, SECRET);
    try {
      h.host.advance(60 * 60_000);
      const flushed = await rt.agent.flush();
      expect(flushed).toMatchObject({ webhook: 6 });
      const order = [...h.mcp.evidence().values()].map((e) => JSON.parse(Buffer.from(e.envelope.payload, 'base64').toString()) as { bundle_id: string; seq: number });
      const bySeq = order.sort((a, b) => a.seq - b.seq).map((b) => b.bundle_id);
      expect(rmm.deliveries.map((d) => [d.headers['webhook-id'], d.status, d.refused])).toEqual(bySeq.map((id) => [id, 200, null]));
      expect(rsyslog.records().map((r) => r.parsed['evidence@32473']!.bundle_id)).toEqual(bySeq);
      expect(rt.agent.pending()).toBe(0);
    } finally {
      await rmm.close();
    }
  });
});
