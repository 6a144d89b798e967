import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCheckCommand } from '../../src/commands/check.js';
import { COMMAND_NAMES, loadCommand } from '../../src/commands/index.js';
import { baselineFor, simulatedAppliance, type SimulatedHost } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('check-cmd-');
afterAll(() => tmp.cleanup());
const hosts: SimulatedHost[] = [];
afterEach(() => {
  hosts.splice(0).forEach((h) => h.dispose());
  vi.restoreAllMocks();
});

/** The `--json` document, as a consumer reads it. */
interface CheckJson {
  facts: Record<string, unknown>;
  results: { check: string; status: string; summary: string; heal: unknown }[];
}

let n = 0;
/** config.json and baseline.json on disk for a fresh simulated appliance. */
function files(edit: { config?: Record<string, unknown>; baseline?: (b: Record<string, unknown>) => unknown } = {}) {
  const host = simulatedAppliance();
  hosts.push(host);
  const dir = join(tmp.path, String(++n));
  const baselinePath = `${dir}-baseline.json`;
  const configPath = `${dir}-config.json`;
  const baseline = baselineFor(host) as unknown as Record<string, unknown>;
  writeFileSync(baselinePath, JSON.stringify(edit.baseline ? edit.baseline(baseline) : baseline));
  writeFileSync(
    configPath,
    JSON.stringify({
      siteId: 'clinic-001',
      hostId: 'clinic-001-appliance',
      deploymentMode: 'direct',
      baselinePath,
      clientCertFile: '/run/credentials/compliance-agent.service/client.crt',
      clientKeyFile: '/run/credentials/compliance-agent.service/client.key',
      signingKeyFile: '/run/credentials/compliance-agent.service/signing.key',
      caFile: '/etc/compliance-agent/mcp-ca.pem',
      mcpUrl: 'https://mcp.example.net',
      allowedHosts: ['mcp.example.net'],
      trustedOrderKeys: ['msp-2026:' + Buffer.alloc(32, 7).toString('base64')],
      ...edit.config,
    }),
  );
  return { host, configPath, baselinePath };
}

/** Run the command in-process on the simulated host, capturing stdout and stderr. */
async function runCheck(host: SimulatedHost, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((err += String(chunk)), true));
  const code = await createCheckCommand(() => host).run(args);
  vi.restoreAllMocks();
  return { code, out, err };
}

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8', cwd: join(import.meta.dirname, '../..') });
}

describe('compliance-agent check', () => {
  it('is registered as a CLI command', async () => {
    expect(COMMAND_NAMES).toContain('check');
    expect((await loadCommand('check'))?.name).toBe('check');
  });

  it('prints a table of every check with status, summary and controls; exit 0 when all are compliant', async () => {
    const f = files();
    const r = await runCheck(f.host, ['--config', f.configPath]);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/^CHECK\s+STATUS\s+SUMMARY$/);
    for (const name of ['patching', 'services', 'backup', 'firewall', 'encryption', 'time']) {
      expect(
        lines.some((l) => new RegExp(`^${name}\\s+compliant\\s+\\S`).test(l)),
        name,
      ).toBe(true);
    }
    expect(r.out).toContain('controls: HIPAA 164.312(a)(2)(iv), HIPAA 164.310(d)(1), SOC 2 CC6.1, SOC 2 CC6.7');
    expect(r.out).toContain('6 check(s) on clinic-001-appliance: 6 compliant, 0 drift, 0 error');
    expect(f.host.actions()).toEqual([]);
  });

  it('exits 1 on drift or error and says which', async () => {
    const f = files();
    f.host.stopService('postgresql.service');
    f.host.setFault('chronyc', 'hang');
    const r = await runCheck(f.host, ['--config', f.configPath]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^services\s+drift\s+1 of 5 required units not active: postgresql\.service \(inactive\)$/m);
    expect(r.out).toMatch(/^time\s+error\s+chronyc -c tracking did not finish within 10 s$/m);
    expect(r.out).toContain('4 compliant, 1 drift, 1 error');
  });

  it('--json prints machine output with facts, controls, heal and disruptive flags', async () => {
    const f = files();
    f.host.changeFirewall('');
    const r = await runCheck(f.host, ['--config', f.configPath, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out) as CheckJson;
    expect(doc).toMatchObject({ site_id: 'clinic-001', host_id: 'clinic-001-appliance', compliant: false, checked_at: expect.stringMatching(/^2026-11-23T12:/) });
    expect(doc.facts.ruleset_hash).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(doc.facts.nixos_revision).toBe(f.host.currentGeneration().nixosVersion);
    const fw = doc.results.find((x) => x.check === 'firewall');
    expect(fw).toMatchObject({ status: 'drift', disruptive: true, heal: { kind: 'rebuild' }, controls: expect.arrayContaining(['SOC 2 CC6.6']) });
    expect(doc.results.find((x) => x.check === 'encryption')?.heal).toEqual({ kind: 'report_only', why: expect.any(String) });
  });

  it('--json says a heal is disruptive exactly when the healer would wait for the window: a services drift is, once journald is down', async () => {
    const f = files();
    f.host.stopService('sshd.service');
    const services = async () =>
      (JSON.parse((await runCheck(f.host, ['--config', f.configPath, '--json', '--only', 'services'])).out) as { results: Array<{ disruptive: boolean }> }).results[0];
    expect(await services()).toMatchObject({ status: 'drift', disruptive: false });
    f.host.stopService('systemd-journald.service');
    expect(await services()).toMatchObject({ status: 'drift', disruptive: true });
  });

  it('--only runs the named checks; an unknown name is a usage error (exit 2)', async () => {
    const f = files();
    const r = await runCheck(f.host, ['--config', f.configPath, '--only', 'time,firewall', '--json']);
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as CheckJson).results.map((x) => x.check)).toEqual(['firewall', 'time']);
    expect(f.host.commandLines().sort()).toEqual(['chronyc -c tracking', 'nft list ruleset']);
    const bad = await runCheck(f.host, ['--config', f.configPath, '--only', 'time,antivirus']);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('--only: unknown check(s) "antivirus"; known: patching, services, backup, firewall, encryption, time\n');
  });

  it('a bad baseline prints every problem with its path and exits 2 before running anything', async () => {
    const f = files({ baseline: (b) => ({ ...b, version: 2, firewall: { rulesetHash: 'md5:abc' }, services: { required: ['sshd'] } }) });
    const r = await runCheck(f.host, ['--config', f.configPath]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${f.baselinePath}: 3 problem(s)`);
    expect(r.err).toContain('  version: ');
    expect(r.err).toContain('  firewall.rulesetHash: must be sha256:<64 hex>');
    expect(r.err).toContain('  services.required.0: must be a systemd unit name like sshd.service');
    expect(f.host.executed).toEqual([]);
  });

  it('the real CLI: a bad config prints every problem with its path and exits 2', () => {
    const f = files({ config: { mcpUrl: 'http://mcp.example.net', maintenanceWindow: '2am-4am', clientKeyFile: 'key.pem', surprise: 1 } });
    const r = cli(['check', '--config', f.configPath]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    for (const line of ['  mcpUrl: must be an https:// URL', '  maintenanceWindow: must be HH:MM-HH:MM (UTC, 24h)', '  clientKeyFile: must be an absolute path']) {
      expect(r.stderr).toContain(line);
    }
    expect(r.stderr).toMatch(/\(root\): .*surprise/);
    expect(cli(['check']).status).toBe(2);
  });

  it('the real CLI on this (non-NixOS) machine: never crashes, reports errors per check, exits 1', () => {
    const f = files();
    const r = cli(['check', '--config', f.configPath, '--json']);
    expect(r.status).toBe(1);
    const doc = JSON.parse(r.stdout) as CheckJson;
    expect(doc.results).toHaveLength(6);
    expect(doc.results.find((x) => x.check === 'patching')).toMatchObject({ status: 'error', summary: 'nixos-version is not installed (not found on PATH)' });
    // The backup stamp path lives in the simulated root, not on this machine.
    expect(doc.results.find((x) => x.check === 'backup')).toMatchObject({ status: 'drift' });
  });
});
