import { afterAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseConfig, parseBaseline, loadConfig } from '../../src/config/index.js';
import { AgentError } from '../../src/common/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const KEY = 'msp-2026:' + Buffer.alloc(32, 7).toString('base64');

export const validConfig = {
  mcpUrl: 'https://mcp.example.net',
  allowedHosts: ['mcp.example.net'],
  siteId: 'clinic-001',
  hostId: 'appliance-1',
  deploymentMode: 'direct',
  baselinePath: '/etc/compliance-agent/baseline.json',
  clientCertFile: '/run/credentials/compliance-agent.service/client.crt',
  clientKeyFile: '/run/credentials/compliance-agent.service/client.key',
  signingKeyFile: '/run/credentials/compliance-agent.service/signing.key',
  caFile: '/etc/compliance-agent/mcp-ca.pem',
  trustedOrderKeys: [KEY],
};

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(AgentError);
    return [...(e as AgentError).details];
  }
  throw new Error('config was accepted');
}

describe('config', () => {
  it('applies the documented defaults', () => {
    const c = parseConfig(validConfig);
    expect(c).toMatchObject({
      pollInterval: 60,
      orderTtl: 900,
      maintenanceWindow: '02:00-04:00',
      allowDisruptiveOutsideWindow: false,
      evidenceRetention: 200,
      pruneRetentionDays: 90,
      ntpMaxSkewMs: 5000,
      rebuildHealthCheckTimeout: 60,
      logLevel: 'INFO',
      policyVersion: '1.0',
      rmmWebhookUrl: null,
      syslogTarget: null,
      webhookSecretFile: null,
      stateDir: '/var/lib/compliance-agent',
    });
  });

  it('reports every problem with its path', () => {
    const p = problems({
      ...validConfig,
      mcpUrl: 'http://mcp.example.net',
      deploymentMode: 'reseller',
      maintenanceWindow: '2am-4am',
      pollInterval: -5,
      trustedOrderKeys: ['nokey'],
      clientKeyFile: 'relative/key.pem',
      surprise: true,
    });
    expect(p).toEqual(
      expect.arrayContaining([
        'mcpUrl: must be an https:// URL',
        'maintenanceWindow: must be HH:MM-HH:MM (UTC, 24h)',
        expect.stringMatching(/^pollInterval: /),
        'trustedOrderKeys.0: must be name:base64 of a 32-byte Ed25519 public key',
        'clientKeyFile: must be an absolute path',
        expect.stringMatching(/^\(root\): .*surprise/),
      ]),
    );
  });

  it('needs resellerId in reseller mode, the MCP host in the egress allowlist, and at least one order key', () => {
    expect(problems({ ...validConfig, deploymentMode: 'reseller' })).toContain('resellerId: is required when deploymentMode is "reseller"');
    expect(problems({ ...validConfig, allowedHosts: ['other.example.net'] })).toContain(
      'allowedHosts: must include the mcpUrl host "mcp.example.net" or egress to the MCP is blocked',
    );
    expect(problems({ ...validConfig, trustedOrderKeys: [] })).toContain('trustedOrderKeys: needs at least one trusted order key');
    expect(problems({ ...validConfig, trustedOrderKeys: [KEY, KEY] })).toContain('trustedOrderKeys: key name "msp-2026" appears twice');
  });

  it('rejects a baseline that names units wrongly or a firewall hash in the wrong form', () => {
    expect(() =>
      parseBaseline({
        version: 1,
        patching: { configurationRevision: 'abc', flakeRef: 'git+https://x/y#a; rm -rf /' },
        services: { required: ['sshd'] },
        backup: { unit: 'restic.service', stampFile: '/var/lib/backup/stamp', maxAgeHours: 26 },
        firewall: { rulesetHash: 'md5:abc' },
        encryption: { requiredMounts: ['/'] },
      }),
    ).toThrow(
      expect.objectContaining({
        details: expect.arrayContaining([
          'patching.flakeRef: must be a flake reference without shell metacharacters, whitespace or a leading dash',
          'services.required.0: must be a systemd unit name like sshd.service (not starting with a dash)',
          'firewall.rulesetHash: must be sha256:<64 hex>',
        ]),
      }),
    );
  });

  it('unit names follow one pattern for the baseline and the healer: none may start with a dash', () => {
    const rev = 'a'.repeat(40);
    const base = {
      version: 1,
      patching: { configurationRevision: rev, flakeRef: `git+https://git.msp.example/sites/clinic-001?rev=${rev}#a` },
      firewall: { rulesetHash: `sha256:${'0'.repeat(64)}` },
      encryption: { requiredMounts: [] },
    };
    for (const unit of ['-.service', '--no-block.service', '-H.service']) {
      expect(() => parseBaseline({ ...base, services: { required: [unit] }, backup: { unit: 'restic.service', stampFile: '/s', maxAgeHours: 1 } })).toThrow(/problem/);
      expect(() => parseBaseline({ ...base, services: { required: [] }, backup: { unit, stampFile: '/s', maxAgeHours: 1 } })).toThrow(/problem/);
    }
    expect(
      parseBaseline({ ...base, services: { required: ['systemd-journald@a.service', 'sys-fs\\x2dx.mount'] }, backup: { unit: 'restic.service', stampFile: '/s', maxAgeHours: 1 } })
        .services.required,
    ).toHaveLength(2);
  });

  it('names the file and the JSON error for unreadable or malformed files', () => {
    const bad = join(tmp.path, 'bad.json');
    writeFileSync(bad, '{"siteId": ');
    expect(() => loadConfig(bad)).toThrow(/config .*bad\.json: not valid JSON/);
    expect(() => loadConfig(join(tmp.path, 'missing.json'))).toThrow(/missing\.json: cannot read \(ENOENT\)/);
  });

  it('the CLI prints every problem and exits 2 without starting anything', () => {
    const file = join(tmp.path, 'config.json');
    writeFileSync(file, JSON.stringify({ ...validConfig, mcpUrl: 'ftp://x', pollInterval: 0 }));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'status', '--config', file], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('mcpUrl: must be an https:// URL');
    expect(r.stderr).toMatch(/pollInterval: /);
  });
});

describe('mcpReceiptKeys and controlPlaneMaxAge', () => {
  const key = (name: string, fill: number) => `${name}:${Buffer.alloc(32, fill).toString('base64')}`;

  it('default to no pinned receipt key and a 24-hour bound', () => {
    expect(parseConfig(validConfig)).toMatchObject({ mcpReceiptKeys: [], controlPlaneMaxAge: 86_400 });
    expect(parseConfig({ ...validConfig, mcpReceiptKeys: [key('mcp-2026', 1), key('mcp-2027', 2)] }).mcpReceiptKeys).toHaveLength(2);
  });

  it('refuse a malformed or twice-named receipt key and a bound that is not a positive number of seconds up to 30 days', () => {
    expect(problems({ ...validConfig, mcpReceiptKeys: ['mcp-2026:short'] }).join('\n')).toMatch(/mcpReceiptKeys\.0: must be name:base64 of a 32-byte Ed25519 public key/);
    expect(problems({ ...validConfig, mcpReceiptKeys: [key('mcp', 1), key('mcp', 2)] }).join('\n')).toMatch(/mcpReceiptKeys: key name "mcp" appears twice/);
    expect(problems({ ...validConfig, controlPlaneMaxAge: 0 }).join('\n')).toMatch(/controlPlaneMaxAge/);
    expect(problems({ ...validConfig, controlPlaneMaxAge: 31 * 86_400 }).join('\n')).toMatch(/controlPlaneMaxAge/);
  });
});
