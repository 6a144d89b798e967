import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { AgentError, createLogger } from '../../src/common/index.js';
import { assertSinkFiles, loadConfig, parseConfig, type ConfigInput } from '../../src/config/index.js';
import { createSinks } from '../../src/outputs/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('ca-sinkcfg-');
afterAll(() => tmp.cleanup());

const SECRET_MARKER = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0';
const goodSecret = join(tmp.path, 'good.secret');
writeFileSync(goodSecret, `whsec_${Buffer.alloc(32, 9).toString('base64')}\n`, { mode: 0o600 });
const caFile = join(tmp.path, 'ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n');

const base: ConfigInput = {
  mcpUrl: 'https://mcp.example.net',
  allowedHosts: ['mcp.example.net', 'rmm.example.net', 'siem.example.net'],
  siteId: 'clinic-001',
  hostId: 'appliance-1',
  deploymentMode: 'reseller',
  resellerId: 'msp-alpha',
  baselinePath: '/etc/compliance-agent/baseline.json',
  clientCertFile: '/run/credentials/c.crt',
  clientKeyFile: '/run/credentials/c.key',
  signingKeyFile: '/run/credentials/s.key',
  caFile: '/etc/compliance-agent/mcp-ca.pem',
  trustedOrderKeys: ['msp-2026:' + Buffer.alloc(32, 7).toString('base64')],
};

function problems(raw: ConfigInput): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(AgentError);
    return [...(e as AgentError).details];
  }
  return [];
}

function loadProblems(raw: ConfigInput, name: string): string[] {
  const path = join(tmp.path, `${name}.json`);
  writeFileSync(path, JSON.stringify(raw));
  try {
    assertSinkFiles(loadConfig(path));
  } catch (e) {
    expect(e).toBeInstanceOf(AgentError);
    return [...(e as AgentError).details];
  }
  return [];
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger('DEBUG', stream) };
}

describe('sink configuration', () => {
  it('explains why udp:// is refused and what a target looks like', () => {
    expect(problems({ ...base, syslogTarget: 'udp://siem.example.net:514' })).toEqual([
      'syslogTarget: udp:// is not supported: UDP syslog has no acknowledgement, no ordering and no TLS, so evidence could be lost or read in transit without anyone knowing; use tcp://host:port or tls://host:port',
    ]);
    expect(problems({ ...base, syslogTarget: 'siem.example.net:514' })).toEqual(['syslogTarget: must be tcp://host:port or tls://host:port']);
    expect(problems({ ...base, syslogTarget: 'tcp://siem.example.net' })[0]).toMatch(/^syslogTarget: must be tcp:\/\/host:port or tls:\/\/host:port \(/);
    expect(problems({ ...base, syslogTarget: 'tcp://siem.example.net:70000' })).toEqual([
      'syslogTarget: must be tcp://host:port or tls://host:port: port 70000 is outside 1-65535',
    ]);
    expect(problems({ ...base, syslogTarget: 'tcp://bad_host:514' })).toEqual([
      'syslogTarget: must be tcp://host:port or tls://host:port: "bad_host" is not a host name or IP address',
    ]);
    expect(problems({ ...base, syslogTarget: 'tcp://siem.example.net:514' })).toEqual([]);
    expect(problems({ ...base, allowedHosts: [...base.allowedHosts!, '10.1.2.3'], syslogTarget: 'tcp://10.1.2.3:514' })).toEqual([]);
  });

  it('requires syslogCaFile for tls:// in reseller mode and only there', () => {
    expect(problems({ ...base, syslogTarget: 'tls://siem.example.net:6514' })).toEqual([
      'syslogCaFile: is required for a tls:// syslogTarget: the CA that signs the receiver certificate (/etc/ssl/certs/ca-certificates.crt for a public CA)',
    ]);
    expect(problems({ ...base, syslogTarget: 'tls://siem.example.net:6514', syslogCaFile: '/etc/siem-ca.pem' })).toEqual([]);
    expect(problems({ ...base, syslogTarget: 'tcp://siem.example.net:514', syslogCaFile: '/etc/siem-ca.pem' })).toEqual([
      'syslogCaFile: is only used with a tls:// syslogTarget; a tcp:// target sends evidence unencrypted, so remove syslogCaFile to mean it',
    ]);
  });

  it('wants https webhooks without credentials, and sink hosts in the egress allowlist', () => {
    expect(problems({ ...base, rmmWebhookUrl: 'http://rmm.example.net/hook', webhookSecretFile: goodSecret })).toEqual(['rmmWebhookUrl: must be an https:// URL']);
    expect(problems({ ...base, rmmWebhookUrl: 'https://u:p@rmm.example.net/hook', webhookSecretFile: goodSecret })).toEqual(['rmmWebhookUrl: must not carry a user or password']);
    expect(problems({ ...base, rmmWebhookUrl: 'https://rmm.example.net/hook' })).toEqual(['webhookSecretFile: is required when rmmWebhookUrl is set in reseller mode']);
    expect(
      problems({
        ...base,
        allowedHosts: ['mcp.example.net'],
        rmmWebhookUrl: 'https://rmm.example.net/hook',
        webhookSecretFile: goodSecret,
        syslogTarget: 'tcp://siem.example.net:514',
      }),
    ).toEqual([
      'allowedHosts: must include the rmmWebhookUrl host "rmm.example.net" or egress to the webhook is blocked',
      'allowedHosts: must include the syslogTarget host "siem.example.net" or egress to syslog is blocked',
    ]);
  });

  it('webhookCaFile goes with rmmWebhookUrl, and must hold a PEM certificate', () => {
    const webhook = { ...base, rmmWebhookUrl: 'https://rmm.example.net/h', webhookSecretFile: goodSecret };
    expect(problems({ ...webhook, webhookCaFile: '/etc/rmm-ca.pem' })).toEqual([]);
    expect(problems({ ...base, webhookCaFile: '/etc/rmm-ca.pem' })).toEqual(['webhookCaFile: is only used with rmmWebhookUrl']);
    expect(problems({ ...webhook, webhookCaFile: 'rmm-ca.pem' })).toEqual(['webhookCaFile: must be an absolute path']);
    expect(loadProblems({ ...webhook, webhookCaFile: caFile }, 'webhook-ca')).toEqual([`webhookCaFile: ${caFile}: not a PEM certificate`]);
  });

  it('direct mode ignores the sinks: no allowlist or CA demands, but malformed values are still errors', () => {
    const direct = { ...base, deploymentMode: 'direct' as const, allowedHosts: ['mcp.example.net'] };
    expect(problems({ ...direct, rmmWebhookUrl: 'https://rmm.example.net/hook', syslogTarget: 'tls://siem.example.net:6514' })).toEqual([]);
    expect(problems({ ...direct, syslogTarget: 'udp://siem.example.net:514' })[0]).toMatch(/^syslogTarget: udp:\/\/ is not supported/);
  });

  it('checks the secret and CA files when the agent starts, naming the path and never the content', () => {
    const missing = join(tmp.path, 'missing.secret');
    expect(loadProblems({ ...base, rmmWebhookUrl: 'https://rmm.example.net/h', webhookSecretFile: missing }, 'missing')).toEqual([
      `webhookSecretFile: ${missing}: cannot read (ENOENT)`,
    ]);

    const raw = join(tmp.path, 'raw.secret');
    writeFileSync(raw, SECRET_MARKER);
    const p = loadProblems(
      { ...base, rmmWebhookUrl: 'https://rmm.example.net/h', webhookSecretFile: raw, syslogTarget: 'tls://siem.example.net:6514', syslogCaFile: caFile },
      'raw',
    );
    expect(p).toEqual([
      `webhookSecretFile: ${raw}: must contain one Standard Webhooks secret, "whsec_" followed by standard base64 (e.g. echo "whsec_$(openssl rand -base64 32)")`,
      `syslogCaFile: ${caFile}: not a PEM certificate`,
    ]);
    expect(p.join('\n')).not.toContain(SECRET_MARKER);

    const short = join(tmp.path, 'short.secret');
    writeFileSync(short, `whsec_${Buffer.alloc(8, 1).toString('base64')}`);
    expect(loadProblems({ ...base, rmmWebhookUrl: 'https://rmm.example.net/h', webhookSecretFile: short }, 'short')).toEqual([
      `webhookSecretFile: ${short}: the secret decodes to 8 bytes; it must be 24 to 64`,
    ]);

    expect(loadProblems({ ...base, rmmWebhookUrl: 'https://rmm.example.net/h', webhookSecretFile: goodSecret }, 'good')).toEqual([]);
    // Direct mode never reads the sink files.
    expect(loadProblems({ ...base, deploymentMode: 'direct', rmmWebhookUrl: 'https://rmm.example.net/h', webhookSecretFile: missing }, 'direct')).toEqual([]);
  });

  it('the agent refuses a bad secret file with exit 2, naming the path, not the content; other commands do not read it', () => {
    const raw = join(tmp.path, 'cli.secret');
    writeFileSync(raw, `whsec_${SECRET_MARKER}!`);
    const file = join(tmp.path, 'cli.json');
    writeFileSync(file, JSON.stringify({ ...base, rmmWebhookUrl: 'https://rmm.example.net/h', webhookSecretFile: raw }));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'once', '--config', file], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`webhookSecretFile: ${raw}: must contain one Standard Webhooks secret`);
    expect(r.stderr + r.stdout).not.toContain(SECRET_MARKER);
    // status reads only the state database: no secret file involved (here: no state yet, exit 0).
    const status = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'status', '--config', file], { encoding: 'utf8' });
    expect(status.stdout).toMatch(/^no state yet/);
    expect(status.status).toBe(0);
  });
});

describe('createSinks', () => {
  it('sends nothing in direct mode even with URLs set, and warns once', async () => {
    const { lines, logger } = capture();
    const config = parseConfig({ ...base, deploymentMode: 'direct', rmmWebhookUrl: 'https://rmm.example.net/h', syslogTarget: 'tcp://siem.example.net:514' });
    const sinks = createSinks(config, logger);
    expect(sinks.destinations).toEqual([]);
    expect(sinks.deliver).toEqual({});
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, msg: 'rmmWebhookUrl and syslogTarget set but ignored: direct mode sends evidence to the MCP only' });
    await sinks.close();
  });

  it('builds a webhook and a syslog destination in reseller mode', async () => {
    const { lines, logger } = capture();
    const config = parseConfig({ ...base, rmmWebhookUrl: 'https://rmm.example.net/h', webhookSecretFile: goodSecret, syslogTarget: 'tcp://siem.example.net:514' });
    const sinks = createSinks(config, logger);
    expect(sinks.destinations).toEqual(['webhook', 'syslog']);
    expect(Object.keys(sinks.deliver)).toEqual(['webhook', 'syslog']);
    expect(lines).toHaveLength(0);
    await sinks.close();
    expect(createSinks(parseConfig(base), logger).destinations).toEqual([]);
  });
});
