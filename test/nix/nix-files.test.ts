import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/index.js';
import { EGRESS_TABLE } from '../../src/egress/index.js';
import { nixEval, nixFiles, REPO, render, run } from './nix.js';

describe('Nix files', () => {
  it('nix-instantiate is installed', () => {
    expect(run('nix-instantiate', ['--version'])).toMatch(/nix-instantiate \(Nix\) \d+\./);
  });

  it('every .nix file parses', () => {
    const files = nixFiles();
    expect(files).toEqual(expect.arrayContaining(['flake.nix', 'modules/compliance-agent.nix', 'packages/compliance-agent/default.nix', 'nixosTests/compliance-agent.nix']));
    for (const file of files) run('nix-instantiate', ['--parse', file]);
  });
});

describe('flake.lock', () => {
  it('pins the nixpkgs input of flake.nix to one exact revision', () => {
    const lock = JSON.parse(readFileSync(join(REPO, 'flake.lock'), 'utf8')) as {
      version: number;
      root: string;
      nodes: Record<string, { inputs?: Record<string, string>; locked?: Record<string, unknown>; original?: Record<string, unknown> }>;
    };
    expect(lock.version).toBe(7);
    expect(lock.nodes[lock.root]?.inputs).toEqual({ nixpkgs: 'nixpkgs' });
    const node = lock.nodes.nixpkgs!;
    expect(node.locked).toEqual({
      type: 'github',
      owner: 'NixOS',
      repo: 'nixpkgs',
      rev: expect.stringMatching(/^[0-9a-f]{40}$/),
      narHash: expect.stringMatching(/^sha256-[A-Za-z0-9+/]{43}=$/),
      lastModified: expect.any(Number),
    });
    const { owner, repo, ref } = node.original as { owner: string; repo: string; ref: string };
    expect(readFileSync(join(REPO, 'flake.nix'), 'utf8')).toContain(`inputs.nixpkgs.url = "github:${owner}/${repo}/${ref}";`);
  });
});

describe('pure helpers (nix-instantiate --eval)', () => {
  const sample = nixEval<ReturnType<typeof render>>('checks/pure-helpers.nix');

  it('checks/pure-helpers.nix evaluates with its self-checks passing', () => {
    expect(sample.exposureTarget).toBe('1.2');
    expect(sample.ruleset.appliance).toContain('table inet compliance_agent {');
    expect(sample.agentUnit).toContain('\nUser=compliance-agent\n');
  });

  it('the table and set names agree with egress-refresh', () => {
    expect(sample.names).toEqual({ tableName: EGRESS_TABLE.name, sets: { v4: EGRESS_TABLE.setV4, v6: EGRESS_TABLE.setV6, ntpV4: EGRESS_TABLE.ntpV4, ntpV6: EGRESS_TABLE.ntpV6 } });
  });

  it('renders a config.json the agent accepts, with exactly the ConfigSchema keys', () => {
    const parsed = ConfigSchema.safeParse(sample.config);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    expect(Object.keys(sample.config).sort()).toEqual(Object.keys(ConfigSchema.shape).sort());
  });

  it('hands every file to the agent through its credentials directory, never a store path', () => {
    for (const key of ['caFile', 'clientCertFile', 'clientKeyFile', 'signingKeyFile']) {
      expect(sample.config[key]).toMatch(new RegExp(`^${sample.credentialsDir}/[a-z0-9.-]+$`));
    }
    expect(sample.credentialsDir).toBe('/run/credentials/compliance-agent.service');
    expect(sample.loadCredentials).toEqual([
      'mcp-ca.pem:/etc/compliance-agent/mcp-ca.pem',
      'client-cert.pem:/run/secrets/compliance-agent/client.pem',
      'client-key.pem:/run/secrets/compliance-agent/client.key',
      'evidence-signing.key:/run/secrets/compliance-agent/evidence.key',
    ]);
    const withWebhook = render({}, { ...sample.defaults, ...baseOptions(), webhookSecretFile: '/run/agenix/webhook' });
    expect(withWebhook.config.webhookSecretFile).toBe(`${sample.credentialsDir}/webhook-secret`);
    expect(withWebhook.loadCredentials).toContain('webhook-secret:/run/agenix/webhook');
  });

  it("the module's defaults are the agent schema's", () => {
    const minimal = ConfigSchema.parse({
      siteId: 's',
      resellerId: 'r',
      baselinePath: '/b.json',
      clientCertFile: '/c',
      clientKeyFile: '/k',
      signingKeyFile: '/s',
      caFile: '/ca',
      trustedOrderKeys: ['k:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
    }) as Record<string, unknown>;
    const seedDefaults = {
      mcpUrl: 'https://mcp.local',
      allowedHosts: ['mcp.local'],
      deploymentMode: 'reseller',
      resellerId: null,
      policyVersion: '1.0',
      webhookSecretFile: null,
      pollInterval: 60,
      orderTtl: 900,
      maintenanceWindow: '02:00-04:00',
      allowDisruptiveOutsideWindow: false,
      evidenceRetention: 200,
      pruneRetentionDays: 90,
      ntpMaxSkewMs: 5000,
      rmmWebhookUrl: null,
      syslogTarget: null,
      rebuildHealthCheckTimeout: 60,
      logLevel: 'INFO',
    };
    expect(sample.defaults).toMatchObject(seedDefaults);
    for (const [key, value] of Object.entries(sample.defaults)) {
      if (key === 'resellerId') continue; // required in reseller mode, so the minimal config sets it
      expect({ key, value: minimal[key] }).toEqual({ key, value });
    }
  });

  it('puts metrics in a world-readable runtime directory of their own, outside the 0700 state directory', () => {
    expect(sample.config.metricsFile).toBe('/run/compliance-agent-metrics/compliance-agent.prom');
    expect(sample.agentUnit).toContain('\nRuntimeDirectory=compliance-agent-metrics\nRuntimeDirectoryMode=0755\nRuntimeDirectoryPreserve=restart\n');
    expect(sample.config.stateDir).toBe('/var/lib/compliance-agent');
  });

  it('hands webhookCaFile to the agent as a credential too', () => {
    const r = render(
      {},
      { ...sample.defaults, ...baseOptions(), rmmWebhookUrl: 'https://rmm.example.com/hook', webhookSecretFile: '/run/agenix/webhook', webhookCaFile: '/etc/rmm-ca.pem' },
    );
    expect(r.config.webhookCaFile).toBe(`${sample.credentialsDir}/webhook-ca.pem`);
    expect(r.loadCredentials).toContain('webhook-ca.pem:/etc/rmm-ca.pem');
    expect(ConfigSchema.safeParse({ ...r.config, allowedHosts: ['mcp.example.com', 'rmm.example.com'] }).success).toBe(true);
  });

  it('a bad request fails the evaluation with a clear message', () => {
    expect(() => render({ scope: 'everything' })).toThrow(/scope must be "appliance" or "agent"/);
    expect(() => render({ resolvers: ['10.0.0.1', 'dns.example.com'] })).toThrow(/resolver "dns.example.com" is not an IPv4 or IPv6 address/);
  });

  it('renders units the way NixOS does: repeated keys for lists, true/false, null dropped', () => {
    const text = JSON.parse(
      run('nix-instantiate', [
        '--eval',
        '--strict',
        '--json',
        '--expr',
        '(import ./modules/lib/unit.nix).renderUnit { Service = { B = [ "x" "y" ]; A = true; C = null; D = ""; }; Unit.Description = "d"; }',
      ]),
    ) as string;
    expect(text).toBe('[Unit]\nDescription=d\n\n[Service]\nA=true\nB=x\nB=y\nD=\n');
    expect(() => run('nix-instantiate', ['--eval', '--strict', '--expr', '(import ./modules/lib/unit.nix).renderUnit { Service.X = "a\nb"; }'])).toThrow(
      /unit\.nix: X must be a single line/,
    );
  });

  it('renders the agent scope around the agent user and the resolvers into their sets', () => {
    const r = render({ scope: 'agent', agentUser: 'nobody', resolvers: ['10.9.0.1', 'fd00:ca::1'] });
    expect(r.ruleset.requested).toContain('meta skuid "nobody" jump egress');
    expect(r.ruleset.requested).toContain('policy accept;');
    expect(r.ruleset.requested).toMatch(/set resolvers_v4 \{\n\s+type ipv4_addr\n\s+elements = \{ 10\.9\.0\.1 \}/);
    expect(r.ruleset.requested).toMatch(/set resolvers_v6 \{\n\s+type ipv6_addr\n\s+elements = \{ fd00:ca::1 \}/);
  });
});

function baseOptions(): Record<string, unknown> {
  return {
    siteId: 'clinic-001',
    hostId: 'appliance-1',
    resellerId: 'msp-alpha',
    mcpUrl: 'https://mcp.example.com',
    allowedHosts: ['mcp.example.com'],
    baselinePath: '/etc/compliance-agent/baseline.json',
    caFile: '/etc/compliance-agent/mcp-ca.pem',
    clientCertFile: '/run/agenix/client.pem',
    clientKeyFile: '/run/agenix/client.key',
    signingKeyFile: '/run/agenix/evidence.key',
    trustedOrderKeys: ['msp:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
  };
}

describe("nixpkgs' build-time `nft --check` of the agent-scope ruleset", () => {
  // A user no machine has, like the agent's user in the build sandbox.
  const user = 'ca-absent-user';
  const evalString = (expr: string): string => JSON.parse(run('nix-instantiate', ['--eval', '--strict', '--json', '--expr', expr])) as string;
  const ruleset = evalString(`(import ./modules/lib/ruleset.nix).renderTable { scope = "agent"; agentUser = "${user}"; }`);
  const preCheck = evalString(`(import ./modules/lib/ruleset.nix).preCheckRuleset "${user}"`);

  /** As networking.nftables does it: ruleset.conf, the preCheckRuleset script, then nft --check. */
  function check(withPreCheck: boolean): void {
    const dir = mkdtempSync(join(tmpdir(), 'ca-nft-check-'));
    try {
      writeFileSync(join(dir, 'ruleset.conf'), ruleset);
      if (withPreCheck) run('sh', ['-c', preCheck], { cwd: dir });
      run('unshare', ['--net', 'nft', '--check', '--file', 'ruleset.conf'], { cwd: dir });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('the user does not exist here', () => {
    expect(() => run('id', [user])).toThrow(/no such user/);
  });

  it('fails on the skuid of a user the sandbox lacks, and passes after preCheckRuleset', () => {
    expect(() => check(false)).toThrow(new RegExp(user));
    check(true);
  });

  it('the module passes its agent user to preCheckRuleset', () => {
    expect(readFileSync(join(REPO, 'modules/compliance-agent.nix'), 'utf8')).toContain('(ruleset.preCheckRuleset "compliance-agent")');
    expect(readFileSync(join(REPO, 'modules/compliance-agent.nix'), 'utf8')).toContain('agentUser = "compliance-agent";');
  });
});
