import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createEgressRefreshCommand } from '../../src/commands/egress-refresh.js';
import { splitAddresses, type Resolver } from '../../src/egress/index.js';
import { tempDir } from '../helpers/tmp.js';
import { render, run } from '../nix/nix.js';
import { NetnsHost } from './netns.js';

const ns = `ca-test-${randomBytes(3).toString('hex')}`;
const tmp = tempDir('ca-egress-cli-');
const resolver: Resolver = async (host) => (host === 'mcp.msp-alpha.example' ? { ok: true, addresses: splitAddresses(['198.51.100.7']) } : { ok: false, reason: 'ENOTFOUND' });
const command = createEgressRefreshCommand({ host: () => new NetnsHost(ns), resolver: () => resolver });

function capture(): { out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
  return { out: () => out.join(''), err: () => err.join('') };
}

function writeConfig(name: string, extra: Record<string, unknown>): string {
  const path = join(tmp.path, name);
  writeFileSync(
    path,
    JSON.stringify({
      mcpUrl: 'https://mcp.msp-alpha.example',
      allowedHosts: ['mcp.msp-alpha.example', 'rmm.msp-alpha.example'],
      siteId: 'clinic-001',
      resellerId: 'msp-alpha',
      baselinePath: '/nix/store/00000000000000000000000000000000-baseline.json',
      clientCertFile: '/run/credentials/compliance-agent.service/client-cert.pem',
      clientKeyFile: '/run/credentials/compliance-agent.service/client-key.pem',
      signingKeyFile: '/run/credentials/compliance-agent.service/evidence-signing.key',
      caFile: '/run/credentials/compliance-agent.service/mcp-ca.pem',
      trustedOrderKeys: ['msp:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
      ...extra,
    }),
  );
  return path;
}

describe('compliance-agent egress-refresh', () => {
  beforeAll(() => {
    run('ip', ['netns', 'add', ns]);
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: render({}).ruleset.requested });
  });
  afterEach(() => vi.restoreAllMocks());
  afterAll(() => {
    run('ip', ['netns', 'del', ns]);
    tmp.cleanup();
  });

  it("needs only allowedHosts: a reseller config whose webhook secret it cannot read is fine (that is the agent's credential)", async () => {
    const config = writeConfig('reseller.json', {
      rmmWebhookUrl: 'https://rmm.msp-alpha.example/hook',
      webhookSecretFile: '/run/credentials/compliance-agent.service/webhook-secret',
    });
    const io = capture();
    const code = await command.run(['--config', config, '--cache', join(tmp.path, 'cache.json')]);
    expect(io.out()).toContain('mcp.msp-alpha.example: 1 address(es) (198.51.100.7)');
    expect(io.err()).toBe('egress-refresh: rmm.msp-alpha.example: DNS lookup failed (ENOTFOUND) and there is no last good address: it stays unreachable\n');
    expect(code).toBe(1);
  });

  it('prints the report as JSON with --json', async () => {
    const config = writeConfig('direct.json', { deploymentMode: 'direct', allowedHosts: ['mcp.msp-alpha.example'] });
    const io = capture();
    const code = await command.run(['--config', config, '--cache', join(tmp.path, 'cache2.json'), '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(io.out())).toMatchObject({ ok: true, applied: { v4: ['198.51.100.7'], v6: [] }, problems: [] });
  });

  it('refuses bad usage and bad config with exit 2 and says why', async () => {
    const good = writeConfig('good.json', { deploymentMode: 'direct' });
    const bad = writeConfig('bad.json', { mcpUrl: 'http://mcp.msp-alpha.example' });
    const secret = join(tmp.path, 'webhook-secret');
    writeFileSync(secret, `whsec_${randomBytes(32).toString('base64')}\n`);
    const cases: Array<[string[], RegExp]> = [
      [['--cache', '/tmp/x.json'], /--config is required/],
      [['--config', good], /--cache must be an absolute path/],
      [['--config', good, '--cache', 'relative.json'], /--cache must be an absolute path/],
      [['--config', good, '--cache', '/tmp/x.json', '--status', 'rel'], /--status must be an absolute path/],
      [['--config', good, '--cache', '/tmp/x.json', 'extra'], /unexpected argument "extra"/],
      [['--config', bad, '--cache', '/tmp/x.json'], /mcpUrl: must be an https:\/\/ URL/],
      [['--config', join(tmp.path, 'missing.json'), '--cache', '/tmp/x.json'], /cannot read \(ENOENT\)/],
      // A secret given as --config by mistake is named, never quoted.
      [['--config', secret, '--cache', '/tmp/x.json'], new RegExp(`^error: config_json: config ${secret}: not valid JSON\n$`)],
    ];
    for (const [args, message] of cases) {
      const io = capture();
      const code = await command.run(args);
      vi.restoreAllMocks();
      expect({ args, code, err: io.err() }).toEqual({ args, code: 2, err: expect.stringMatching(message) });
    }
  });
});
