import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { render, run } from './nix.js';

const dir = tempDir('ca-unit-');
afterAll(() => dir.cleanup());

/**
 * `systemd-analyze security --offline=true FILE` (systemd >= 250) scores a unit file without a
 * running systemd. Exits non-zero above --threshold, which counts tenths (12 = 1.2).
 */
function exposure(unitName: string, text: string, threshold: number): { score: number; exitCode: number; report: string } {
  const path = join(dir.path, unitName);
  writeFileSync(path, text);
  let report: string;
  let exitCode = 0;
  try {
    report = run('systemd-analyze', ['security', '--offline=true', `--threshold=${Math.round(threshold * 10)}`, path]);
  } catch (e) {
    const m = /failed \(exit (\d+)\): ([\s\S]*)$/.exec((e as Error).message);
    if (!m) throw e;
    exitCode = Number(m[1]);
    report = run('systemd-analyze', ['security', '--offline=true', path]);
  }
  const score = /Overall exposure level for \S+: (\d+\.\d+)/.exec(report);
  if (!score) throw new Error(`systemd-analyze printed no exposure level:\n${report}`);
  return { score: Number(score[1]), exitCode, report };
}

describe('systemd-analyze security of the rendered units', () => {
  const rendered = render();
  const target = Number(rendered.exposureTarget);

  it('systemd-analyze supports --offline', () => {
    expect(run('systemd-analyze', ['--version'])).toMatch(/^systemd (\d+)/);
    expect(run('systemd-analyze', ['security', '--help'])).toContain('--offline');
  });

  it(`the agent unit scores at most ${target}`, () => {
    const r = exposure('compliance-agent.service', rendered.agentUnit, target);
    process.stdout.write(`compliance-agent.service exposure: ${r.score} (target <= ${target})\n`);
    expect(r.report).not.toMatch(/✗ CapabilityBoundingSet=/);
    expect(r.report).not.toMatch(/✗ (NoNewPrivileges|ProtectSystem|PrivateUsers|SocketBindDeny)=/);
    expect(r.score).toBeLessThanOrEqual(target);
    expect(r.exitCode).toBe(0);
  });

  it('an IP allowlist for known MCP addresses (egress.agentAddressAllow) lowers it further', () => {
    expect(rendered.agentUnitAddressAllow).toContain('\nIPAddressAllow=localhost\nIPAddressAllow=203.0.113.10\nIPAddressAllow=10.0.0.53\nIPAddressDeny=any\n');
    const r = exposure('compliance-agent.service', rendered.agentUnitAddressAllow, target);
    process.stdout.write(`compliance-agent.service exposure with IPAddressAllow: ${r.score}\n`);
    expect(r.report).toMatch(/IPAddressDeny=  +Service defines IP address allow list with non-localhost entries/);
    expect(r.score).toBeLessThan(exposure('compliance-agent.service', rendered.agentUnit, target).score);
  });

  it('the threshold bites: the basic hardening list alone scores above the target', () => {
    const seedOnly = [
      '[Service]',
      'ExecStart=/run/current-system/sw/bin/compliance-agent run --config /etc/compliance-agent/config.json',
      'User=compliance-agent',
      'ProtectSystem=strict',
      'ProtectHome=true',
      'PrivateTmp=true',
      'NoNewPrivileges=true',
      'PrivateDevices=true',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'CapabilityBoundingSet=',
      'SystemCallFilter=@system-service',
      '',
    ].join('\n');
    const r = exposure('seed-only.service', seedOnly, target);
    process.stdout.write(`seed hardening list alone: ${r.score}\n`);
    expect(r.score).toBeGreaterThan(target);
    expect(r.exitCode).not.toBe(0);
  });

  it('the egress-refresh unit holds CAP_NET_ADMIN only and stays low', () => {
    const r = exposure('compliance-agent-egress.service', rendered.egressUnit, 2);
    process.stdout.write(`compliance-agent-egress.service exposure: ${r.score}\n`);
    expect(r.report).toMatch(/✗ CapabilityBoundingSet=~CAP_NET_ADMIN/);
    expect(r.report).toMatch(/✓ CapabilityBoundingSet=~CAP_SYS_ADMIN/);
    expect(r.score).toBeLessThanOrEqual(2);
  });
});
