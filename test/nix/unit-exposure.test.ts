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

  it('the disk snapshot unit: root with CAP_SYS_ADMIN only, no network, devices visible, output for the agent group only', () => {
    const unit = rendered.diskUnit;
    expect(unit).not.toMatch(/\nUser=/);
    expect(unit).toContain('\nCapabilityBoundingSet=CAP_SYS_ADMIN\n');
    expect(unit).toContain('\nPrivateNetwork=true\n');
    expect(unit).not.toMatch(/\n(PrivateDevices|DevicePolicy)=/);
    expect(unit).toContain('\nGroup=compliance-agent\nIPAddressDeny=any\n');
    expect(unit).toContain('\nRuntimeDirectoryMode=0750\n');
    expect(unit).toContain('\nUMask=0027\n');
    // The agent itself keeps PrivateDevices, which is why it needs the snapshot.
    expect(rendered.agentUnit).toContain('\nPrivateDevices=true\n');
    const r = exposure('compliance-agent-disks.service', unit, 10);
    process.stdout.write(`compliance-agent-disks.service exposure: ${r.score}\n`);
    expect(r.report).toMatch(/✓ CapabilityBoundingSet=~CAP_NET_ADMIN/);
    expect(r.report).toMatch(/✗ CapabilityBoundingSet=~CAP_SYS_ADMIN/);
    expect(r.score).toBeLessThan(7);
  });

  it('the egress unit refills the sets on every nftables reload and restart, and stays active for it', () => {
    const unit = rendered.egressReloadUnit;
    expect(unit).toContain('\nPartOf=nftables.service\nReloadPropagatedFrom=nftables.service\n');
    expect(unit).toContain('\nRemainAfterExit=true\n');
    // A failed lookup must not leave it inactive, or the next reload would not reach it.
    const start = /\nExecStart=-(.+)\n/.exec(unit)![1];
    expect(unit).toContain(`\nExecReload=-${start}\n`);
    expect(rendered.egressUnit).not.toMatch(/\n(RemainAfterExit|ExecReload)=/);
  });

  it('the egress-refresh unit holds CAP_NET_ADMIN only and stays low', () => {
    const r = exposure('compliance-agent-egress.service', rendered.egressUnit, 2);
    process.stdout.write(`compliance-agent-egress.service exposure: ${r.score}\n`);
    expect(r.report).toMatch(/✗ CapabilityBoundingSet=~CAP_NET_ADMIN/);
    expect(r.report).toMatch(/✓ CapabilityBoundingSet=~CAP_SYS_ADMIN/);
    expect(r.score).toBeLessThanOrEqual(2);
  });
});
