/**
 * Reseller sink throughput: a backlog of signed bundles in the real SQLite outbox, flushed through
 * flushDestination to a real rsyslog (TCP and TLS, octet counting) and to a local HTTPS webhook
 * receiver that verifies every signature with the standardwebhooks library (in this process, so
 * its CPU counts against the figure). Batch size 1 is what the agent uses for sinks today.
 *
 *   npx tsx bench/outputs.ts [--syslog 10000] [--webhook 2000] [--batches 1,100]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { generatePki } from '../testing/index.js';
import { readWebhookSecret } from '../src/config/index.js';
import { SyslogSink, WebhookSink } from '../src/outputs/index.js';
import { EvidenceQueue } from '../test/outputs/evidence-queue.js';
import { Rsyslog } from '../test/outputs/rsyslog.js';
import { WebhookReceiver } from '../test/outputs/webhook-receiver.js';

const { values } = parseArgs({
  options: { syslog: { type: 'string', default: '10000' }, webhook: { type: 'string', default: '2000' }, batches: { type: 'string', default: '1,100' } },
});
const SYSLOG_N = Number(values.syslog);
const WEBHOOK_N = Number(values.webhook);
const BATCHES = values.batches.split(',').map(Number);

const dir = mkdtempSync(join(tmpdir(), 'ca-bench-outputs-'));
const rows: string[][] = [];

function fill(q: EvidenceQueue, dest: 'syslog' | 'webhook', n: number): void {
  for (let i = 0; i < n; i += 500)
    q.add(
      [dest],
      Array.from({ length: Math.min(500, n - i) }, () => ({ outcome: 'compliant' as const })),
    );
}

async function main(): Promise<void> {
  const pki = await generatePki(join(dir, 'pki'));
  const rsyslog = await Rsyslog.start(join(dir, 'rsyslog'), { tls: { ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey } });
  let run = 0;
  try {
    for (const protocol of ['tcp', 'tls'] as const) {
      for (const batch of BATCHES) {
        const q = new EvidenceQueue(join(dir, `q${run++}`));
        fill(q, 'syslog', SYSLOG_N);
        const sink = new SyslogSink({
          target: { protocol, host: protocol === 'tls' ? 'localhost' : '127.0.0.1', port: protocol === 'tls' ? rsyslog.ports.tls! : rsyslog.ports.tcp },
          ...(protocol === 'tls' ? { ca: readFileSync(pki.caCert), caFile: pki.caCert } : {}),
        });
        const before = rsyslog.records().length;
        const t0 = performance.now();
        const cpu0 = process.cpuUsage();
        const r = await q.flush('syslog', sink.deliver, batch);
        const flushed = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        await rsyslog.waitForRecords(before + SYSLOG_N, 120_000);
        const landed = performance.now() - t0;
        if (r.delivered !== SYSLOG_N) throw new Error(`delivered ${r.delivered} of ${SYSLOG_N}`);
        rows.push([
          `syslog ${protocol}`,
          String(batch),
          String(SYSLOG_N),
          (flushed / 1000).toFixed(2),
          String(Math.round(SYSLOG_N / (flushed / 1000))),
          ((cpu.user + cpu.system) / 1e6).toFixed(2),
          (landed / 1000).toFixed(2),
        ]);
        sink.close();
        q.close();
      }
    }
  } finally {
    await rsyslog.stop();
  }

  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const secretFile = join(dir, 'webhook.secret');
  writeFileSync(secretFile, secret);
  const rx = await WebhookReceiver.start({ cert: pki.serverCert, key: pki.serverKey }, secret);
  try {
    for (const batch of BATCHES) {
      const q = new EvidenceQueue(join(dir, `q${run++}`));
      fill(q, 'webhook', WEBHOOK_N);
      const sink = new WebhookSink({ url: `https://localhost:${rx.port}/hook`, secret: readWebhookSecret(secretFile), ca: readFileSync(pki.caCert) });
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const r = await q.flush('webhook', sink.deliver, batch);
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (r.delivered !== WEBHOOK_N) throw new Error(`delivered ${r.delivered} of ${WEBHOOK_N}`);
      if (rx.deliveries.some((d) => d.refused)) throw new Error('the receiver refused a signature');
      rows.push([
        'webhook https',
        String(batch),
        String(WEBHOOK_N),
        (ms / 1000).toFixed(2),
        String(Math.round(WEBHOOK_N / (ms / 1000))),
        ((cpu.user + cpu.system) / 1e6).toFixed(2),
        '(verified in-process)',
      ]);
      await sink.close();
      q.close();
    }
  } finally {
    await rx.close();
  }

  console.log(`reseller sinks over loopback, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
  const head = ['sink', 'batch', 'bundles', 'flush s', 'bundles/s', 'cpu s', 'all in receiver s'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
