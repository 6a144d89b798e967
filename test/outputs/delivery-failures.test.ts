import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { type Harness, generatePki } from '../../testing/index.js';
import { createLogger } from '../../src/common/index.js';
import type { AgentRuntime } from '../../src/agent/index.js';
import { readStatus } from '../../src/observe/index.js';
import { createSinks, type Sinks } from '../../src/outputs/index.js';
import type { Deliver } from '../../src/queue/index.js';
import { openStateDb, stateLayout } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';
import { Rsyslog } from './rsyslog.js';
import { startResellerSite } from './reseller-site.js';
import { WebhookReceiver } from './webhook-receiver.js';

const tmp = tempDir('ca-delivery-failures-');
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const OTHER_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const SUMMARY_EVERY_MS = 15 * 60_000;

interface Line {
  level: number;
  msg: string;
  destination?: string;
  kind?: string;
  [k: string]: unknown;
}
const lines: Line[] = [];
const raw: string[] = [];
const logger = createLogger(
  'INFO',
  new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw.push(chunk.toString());
      lines.push(JSON.parse(chunk.toString()) as Line);
      cb();
    },
  }),
);

let h: Harness;
let rsyslog: Rsyslog;
let rt: AgentRuntime;
let metricsFile: string;
/** The webhook delivery the agent uses; each test points it at another receiver. */
let webhook: Sinks | null = null;
const closers: (() => unknown)[] = [];

function useWebhook(url: string, extra: { webhookCaFile?: string } = {}): void {
  void webhook?.close();
  webhook = createSinks({ ...h.config, syslogTarget: null, rmmWebhookUrl: url, webhookCaFile: extra.webhookCaFile ?? h.pki.caCert }, logger);
}

async function receiver(secret: string, tls = { cert: h.pki.serverCert, key: h.pki.serverKey }): Promise<WebhookReceiver> {
  const r = await WebhookReceiver.start(tls, secret);
  closers.push(() => r.close());
  return r;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  s.listen(0);
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function deliveryLines(destination: string): Line[] {
  return lines.filter((l) => l.destination === destination && / delivery /.test(l.msg));
}

function status() {
  const db = openStateDb(stateLayout(h.config.stateDir).db, { readonly: true });
  try {
    return readStatus(db, h.host.now());
  } finally {
    db.close();
  }
}

function destinationStatus(d: string) {
  return status().delivery.find((s) => s.destination === d)!;
}

function metrics(): string {
  return readFileSync(metricsFile, 'utf8');
}

function bundlesAtMcp(): { bundle_id: string; seq: number; check: string; outcome: string; pre_state: Record<string, unknown> | null }[] {
  return [...h.mcp.evidence().values()]
    .map(
      (e) =>
        JSON.parse(Buffer.from(e.envelope.payload, 'base64').toString()) as {
          bundle_id: string;
          seq: number;
          check: string;
          outcome: string;
          pre_state: Record<string, unknown> | null;
        },
    )
    .sort((a, b) => a.seq - b.seq);
}

beforeAll(async () => {
  // The agent's unit runs with UMask=0077; the metrics file must still be world-readable.
  process.umask(0o077);
  rsyslog = await Rsyslog.start(join(tmp.path, 'rsyslog'));
  metricsFile = join(tmp.path, 'metrics', 'compliance-agent.prom');
  mkdirSync(join(tmp.path, 'metrics'));
  ({ h } = await startResellerSite(tmp.path, SECRET, rsyslog, { metricsFile }));
  const syslog = createSinks({ ...h.config, rmmWebhookUrl: null }, logger);
  const viaCurrentWebhook: Deliver = (items) => webhook!.deliver.webhook!(items);
  // The summary interval is the default one.
  rt = h.openAgent({ logger, extra: { sinks: { webhook: viaCurrentWebhook, syslog: syslog.deliver.syslog! } } });
  closers.push(() => syslog.close());
});

afterAll(async () => {
  await webhook?.close();
  await h?.close();
  for (const close of closers) await close();
  await rsyslog?.stop();
  tmp.cleanup();
});

describe('delivery failures an operator sees', () => {
  it('connection refused: one line naming the destination and reason, the status field, the metric; summaries rate-limited; the MCP and syslog go on', async () => {
    const port = await closedPort();
    useWebhook(`https://localhost:${port}/rmm/hook`);
    const report = await rt.agent.cycle();
    expect(report.flushed).toEqual({ mcp: 6, webhook: 0, syslog: 6 });

    const reason = `webhook POST failed: connection to localhost:${port} refused (ECONNREFUSED)`;
    expect(deliveryLines('webhook')).toEqual([expect.objectContaining({ level: 40, kind: 'connection_refused', failures: 1, msg: `webhook delivery failing: ${reason}` })]);
    expect(destinationStatus('webhook')).toMatchObject({ state: 'failing', kind: 'connection_refused', lastError: reason, lastErrorAt: h.host.now(), pending: 6, dead: 0 });
    expect(destinationStatus('mcp')).toMatchObject({ state: 'ok', lastError: null, pending: 0 });
    expect(metrics()).toContain('compliance_agent_delivery_failing{destination="webhook"} 1\n');
    expect(metrics()).toContain('compliance_agent_delivery_failing{destination="mcp"} 0\n');
    expect(metrics()).toContain('compliance_agent_delivery_failure_info{destination="webhook",kind="connection_refused"} 1\n');
    expect(metrics()).toContain(`compliance_agent_delivery_last_error_timestamp_seconds{destination="webhook"} ${h.host.now() / 1000}\n`);

    // Failing again within the summary interval: no new line.
    h.host.advance(60_000);
    await rt.agent.cycle();
    expect(deliveryLines('webhook')).toHaveLength(1);
    expect(destinationStatus('webhook').lastErrorAt).toBe(h.host.now());

    // Past it: one summary.
    h.host.advance(SUMMARY_EVERY_MS);
    await rt.agent.cycle();
    const summary = deliveryLines('webhook')[1]!;
    expect(deliveryLines('webhook')).toHaveLength(2);
    expect(summary).toMatchObject({ level: 40, kind: 'connection_refused', failures: 3 });
    expect(summary.msg).toBe(`webhook delivery still failing after 16m (3 failed attempt(s), 2 since the last line): ${reason}`);
  });

  it('a receiver certificate from another CA is refused when webhookCaFile pins the RMM CA', async () => {
    const other = await generatePki(join(tmp.path, 'other-pki'), { serverNames: ['localhost'] });
    const rogue = await receiver(SECRET, { cert: other.serverCert, key: other.serverKey });
    useWebhook(`https://localhost:${rogue.port}/rmm/hook`, { webhookCaFile: h.pki.caCert });
    h.host.advance(60 * 60_000);
    await rt.agent.cycle();
    expect(rogue.deliveries).toEqual([]);
    const line = deliveryLines('webhook').at(-1)!;
    expect(line).toMatchObject({ level: 40, kind: 'tls' });
    expect(line.msg).toMatch(
      new RegExp(`^webhook delivery failing: webhook POST failed: TLS to localhost:${rogue.port} failed: server certificate is not signed by the CA in ${h.pki.caCert} \\(`),
    );
    expect(destinationStatus('webhook')).toMatchObject({ state: 'failing', kind: 'tls', lastErrorAt: h.host.now() });
    expect(metrics()).toContain('compliance_agent_delivery_failure_info{destination="webhook",kind="tls"} 1\n');
    expect(metrics()).not.toContain('kind="connection_refused"');
  });

  it("503 (and the MCP's): retried with the receiver's answer; recovery is one line each and the backlog arrives once, in order", async () => {
    const rmm = await receiver(SECRET);
    rmm.script.push({ status: 503, body: 'maintenance window' });
    useWebhook(`https://localhost:${rmm.port}/rmm/hook`);
    h.mcp.setFault({ status: 503, body: 'mcp maintenance' });
    h.host.advance(60 * 60_000);
    await rt.agent.cycle();

    const line = deliveryLines('webhook').at(-1)!;
    expect(line).toMatchObject({ level: 40, kind: 'http_503', msg: `webhook delivery failing: webhook localhost:${rmm.port} answered 503: maintenance window` });
    expect(destinationStatus('webhook')).toMatchObject({ state: 'failing', kind: 'http_503', lastError: `webhook localhost:${rmm.port} answered 503: maintenance window` });
    expect(metrics()).toContain('compliance_agent_delivery_failure_info{destination="webhook",kind="http_503"} 1\n');
    // The MCP's failures are logged the same way.
    const mcpLine = deliveryLines('mcp').at(-1)!;
    expect(mcpLine).toMatchObject({ level: 40, kind: 'http_503' });
    expect(mcpLine.msg).toMatch(/^mcp delivery failing: MCP 127.0.0.1:\d+ answered 503 to POST \/\S+: .*mcp maintenance/);
    expect(destinationStatus('mcp')).toMatchObject({ state: 'failing', kind: 'http_503' });
    expect(metrics()).toContain('compliance_agent_delivery_failure_info{destination="mcp",kind="http_503"} 1\n');

    h.mcp.setFault(null);
    h.host.advance(60 * 60_000);
    await rt.agent.cycle();
    expect(deliveryLines('webhook').at(-1)).toMatchObject({ level: 30, recoveredFrom: 'http_503' });
    // Failing since the connection was first refused, whatever the kinds since.
    expect(deliveryLines('webhook').at(-1)!.msg).toBe('webhook delivery recovered after 3h (5 failed attempt(s))');
    expect(deliveryLines('mcp').at(-1)).toMatchObject({ level: 30, recoveredFrom: 'http_503', msg: 'mcp delivery recovered after 60m (1 failed attempt(s))' });
    expect(destinationStatus('webhook')).toMatchObject({ state: 'ok', kind: null, pending: 0, lastOkAt: h.host.now() });
    expect(metrics()).toContain('compliance_agent_delivery_failing{destination="webhook"} 0\n');
    expect(metrics()).not.toContain('compliance_agent_delivery_failure_info{');

    const delivered = rmm.deliveries.filter((d) => d.status === 200).map((d) => d.headers['webhook-id']);
    expect(delivered).toEqual(bundlesAtMcp().map((b) => b.bundle_id));
    expect(new Set(delivered).size).toBe(delivered.length);
  });

  it('401 (another secret): dead letters, one alert bundle to the MCP and syslog only, in status and the metric', async () => {
    const rmm = await receiver(OTHER_SECRET);
    useWebhook(`https://localhost:${rmm.port}/rmm/hook`);
    // A heartbeat's worth of new evidence for the webhook to refuse.
    h.host.advance(61 * 60_000);
    const before = rt.agent.deadLetteredCount;
    await rt.agent.cycle();
    const refused = rmm.deliveries.filter((d) => d.status === 401).map((d) => d.headers['webhook-id']!);
    expect(refused.length).toBeGreaterThan(0);
    expect(rt.agent.deadLetteredCount - before).toBe(refused.length);

    const line = deliveryLines('webhook').at(-1)!;
    expect(line).toMatchObject({ level: 50, kind: 'http_401', deadLettered: refused.length });
    expect(line.msg).toMatch(
      new RegExp(
        `^webhook delivery failing: webhook localhost:${rmm.port} refused with 401: .*; ${refused.length} bundle\\(s\\) dead-lettered, see compliance-agent dead-letters list$`,
      ),
    );

    const s = status();
    expect(s.deadLetters.map((d) => [d.destination, d.bundleId])).toEqual(refused.map((id) => ['webhook', id]));
    for (const d of s.deadLetters) expect(d.reason).toMatch(new RegExp(`^webhook localhost:${rmm.port} refused with 401: `));
    expect(s.delivery.find((d) => d.destination === 'webhook')).toMatchObject({ state: 'failing', kind: 'http_401', dead: refused.length });
    expect(metrics()).toContain(`compliance_agent_queue_dead_letters{destination="webhook"} ${refused.length}\n`);
    expect(metrics()).toContain('compliance_agent_delivery_failure_info{destination="webhook",kind="http_401"} 1\n');

    // One alert, at the MCP and at the SIEM, never queued for the webhook it is about.
    const alerts = bundlesAtMcp().filter((b) => b.check === 'delivery');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ outcome: 'failed', pre_state: { event: 'dead_lettered', destination: 'webhook', count: refused.length } });
    const listed = (alerts[0]!.pre_state!.dead_letters as { bundle_id: string }[]).map((d) => d.bundle_id);
    expect(listed).toEqual(refused);
    // rsyslog writes asynchronously: wait for the alert's record (it was handed to the kernel).
    const atSiem = async () => rsyslog.records().filter((r) => r.parsed['evidence@32473']!.bundle_id === alerts[0]!.bundle_id);
    for (let i = 0; i < 200 && (await atSiem()).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await atSiem()).toHaveLength(1);
    expect(rmm.deliveries.map((d) => d.headers['webhook-id'])).not.toContain(alerts[0]!.bundle_id);

    // Alerted once: the next cycle raises no other.
    h.host.advance(60_000);
    await rt.agent.cycle();
    expect(bundlesAtMcp().filter((b) => b.check === 'delivery')).toHaveLength(1);
    // No line ever carried the secret.
    for (const text of raw) {
      expect(text).not.toContain(SECRET.slice(6));
      expect(text).not.toContain(OTHER_SECRET.slice(6));
    }
  });

  it('an alert that is itself dead-lettered raises no further alert (no loop between destinations)', async () => {
    const rmm = await receiver(OTHER_SECRET);
    useWebhook(`https://localhost:${rmm.port}/rmm/hook`);
    // Both the MCP and the webhook now refuse everything for good.
    h.mcp.setFault({ status: 422, body: 'not for us' });
    h.host.advance(61 * 60_000);
    await rt.agent.cycle();
    // Within the heartbeat: no new evidence, only the alerts dead-lettered by the last flush to look at.
    h.host.advance(60_000);
    await rt.agent.cycle();
    h.mcp.setFault(null);
    const db = openStateDb(stateLayout(h.config.stateDir).db, { readonly: true });
    try {
      const alerts = db.prepare("SELECT bundle_id FROM evidence WHERE check_name = 'delivery' ORDER BY seq").all() as { bundle_id: string }[];
      // The first test's alert, then one about the MCP and one about the webhook: never one about an alert.
      expect(alerts).toHaveLength(3);
      const rows = db.prepare('SELECT destination, state FROM outbox WHERE bundle_id = ? ORDER BY destination').all(alerts[1]!.bundle_id);
      expect(rows.length).toBe(2);
      expect(db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE state = 'dead' AND dead_alerted = 0").get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });

  it('syslog too: the real rsyslog stopped is one line, the status field and the metric; restarted, one recovery line and the backlog in order', async () => {
    await rsyslog.stop();
    h.host.advance(61 * 60_000);
    await rt.agent.cycle();
    const reason = `syslog: connection to tcp://127.0.0.1:${rsyslog.ports.tcp} refused (ECONNREFUSED)`;
    expect(deliveryLines('syslog')).toEqual([expect.objectContaining({ level: 40, kind: 'connection_refused', msg: `syslog delivery failing: ${reason}` })]);
    expect(destinationStatus('syslog')).toMatchObject({ state: 'failing', kind: 'connection_refused', lastError: reason });
    expect(destinationStatus('syslog').pending).toBeGreaterThan(0);
    expect(metrics()).toContain('compliance_agent_delivery_failure_info{destination="syslog",kind="connection_refused"} 1\n');

    await rsyslog.restart();
    h.host.advance(60 * 60_000);
    await rt.agent.cycle();
    expect(deliveryLines('syslog').at(-1)).toMatchObject({ level: 30, recoveredFrom: 'connection_refused' });
    expect(destinationStatus('syslog')).toMatchObject({ state: 'ok', pending: 0 });
    const db = openStateDb(stateLayout(h.config.stateDir).db, { readonly: true });
    try {
      const queued = (db.prepare("SELECT bundle_id FROM outbox WHERE destination = 'syslog' ORDER BY id").all() as { bundle_id: string }[]).map((r) => r.bundle_id);
      // rsyslog writes asynchronously.
      for (let i = 0; i < 200 && rsyslog.records().length < queued.length; i++) await new Promise((r) => setTimeout(r, 50));
      expect(rsyslog.records().map((r) => r.parsed['evidence@32473']!.bundle_id)).toEqual(queued);
    } finally {
      db.close();
    }
  });

  it('writes the metrics file world-readable whatever the umask', () => {
    expect(statSync(metricsFile).mode & 0o777).toBe(0o644);
  });

  it('a metrics path that cannot be written costs one warning, never the cycle', async () => {
    const missing = join(tmp.path, 'no-such-dir', 'compliance-agent.prom');
    const other = h.openAgent({ logger, extra: { sinks: {}, metricsPath: missing } });
    const warned = () => lines.filter((l) => l.msg.startsWith(`cannot write metrics to ${missing}: `));
    await other.agent.cycle();
    h.host.advance(60_000);
    await other.agent.cycle();
    expect(warned()).toEqual([expect.objectContaining({ level: 40 })]);
    expect(warned()[0]!.msg).toMatch(/ENOENT/);
  });
});
