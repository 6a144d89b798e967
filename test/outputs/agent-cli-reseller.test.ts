import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';
import { Rsyslog } from './rsyslog.js';
import { WebhookReceiver } from './webhook-receiver.js';

const tmp = tempDir('ca-cli-reseller-');
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
let h: Harness;
let rsyslog: Rsyslog;
let rmm: WebhookReceiver;

beforeAll(async () => {
  rsyslog = await Rsyslog.start(join(tmp.path, 'rsyslog'));
  const secretFile = join(tmp.path, 'webhook.secret');
  writeFileSync(secretFile, SECRET, { mode: 0o600 });
  h = await startHarness(join(tmp.path, 'site'), {
    config: {
      deploymentMode: 'reseller',
      resellerId: 'msp-alpha',
      allowedHosts: ['localhost', '127.0.0.1'],
      webhookSecretFile: secretFile,
      syslogTarget: `tcp://127.0.0.1:${rsyslog.ports.tcp}`,
    },
  });
  rmm = await WebhookReceiver.startOn(0, { cert: h.pki.serverCert, key: h.pki.serverKey }, SECRET);
  // The harness wrote config.json before the receiver had a port: point the webhook at it now.
  const raw = JSON.parse(readFileSync(h.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(h.configPath, JSON.stringify({ ...raw, rmmWebhookUrl: `https://localhost:${rmm.port}/rmm/hook` }));
});

afterAll(async () => {
  await rmm?.close();
  await h?.close();
  await rsyslog?.stop();
  tmp.cleanup();
});

describe('compliance-agent once in reseller mode (sinks built from config.json)', () => {
  it('delivers every bundle to the MCP, the RMM webhook (verified by standardwebhooks) and rsyslog', async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', 'src/cli.ts', 'once', '--config', h.configPath],
        // The webhook trusts the system CAs; the test CA joins them the standard Node way.
        { encoding: 'utf8', timeout: 60_000, env: { ...process.env, NODE_EXTRA_CA_CERTS: h.pki.caCert } },
        (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
      );
    });
    expect(r.stdout).toMatch(/0 item\(s\) still queued/);
    expect(r.code).toBe(0);
    const ids = [...h.mcp.evidence().keys()].sort();
    expect(ids).toHaveLength(6);
    expect(
      rmm.deliveries
        .filter((d) => d.status === 200)
        .map((d) => d.headers['webhook-id'])
        .sort(),
    ).toEqual(ids);
    expect(rmm.deliveries.every((d) => d.refused === null)).toBe(true);
    expect(
      rsyslog
        .records()
        .map((rec) => rec.parsed['evidence@32473']!.bundle_id)
        .sort(),
    ).toEqual(ids);
    expect(r.stdout + r.stderr).not.toContain(SECRET.slice(6));
  });
});
