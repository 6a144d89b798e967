import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { startHarness, type Harness } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';
import { CLI, cli } from '../helpers/cli.js';

const tmp = tempDir();
let h: Harness;

beforeAll(async () => {
  h = await startHarness(tmp.path, { config: { pollInterval: 1 } });
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

// These run the real CLI on this (non-NixOS) machine with the real host: the checks report
// errors (no nixos-version here), which is evidence like any other.
describe('compliance-agent CLI on the real host', () => {
  it('once: exits 0 when everything reached the MCP, 1 while the MCP is down', async () => {
    const ok = await cli('once', '--config', h.configPath);
    expect(ok.stderr).not.toMatch(/error:/);
    expect(ok.stdout).toMatch(/cycle: poll none, 6 bundle\(s\) created, 0 item\(s\) still queued/);
    expect(ok.status).toBe(0);
    expect(h.mcp.stats().unique).toBe(6);

    h.mcp.setFault('down');
    const down = await cli('once', '--config', h.configPath);
    expect(down.status).toBe(1);
    expect(down.stdout).toMatch(/poll failed, \d+ bundle\(s\) created, [1-9]\d* item\(s\) still queued/);
    h.mcp.setFault(null);
  });

  it('status: last poll, checks, queue depth and age, chain head', async () => {
    const r = await cli('status', '--config', h.configPath);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/last poll: .* FAILED: /);
    expect(r.stdout).toMatch(/patching {4}error/);
    expect(r.stdout).toMatch(/mcp {6}pending [1-9]\d*, oldest \d+s, dead 0, delivered 6/);
    expect(r.stdout).toMatch(/appliance-1 seq \d+ head sha256:[0-9a-f]{64}/);
    const json = JSON.parse((await cli('status', '--config', h.configPath, '--json')).stdout) as { chain: { seq: number }[] };
    expect(json.chain[0]?.seq).toBeGreaterThan(6);
  });

  it('run: cycles every pollInterval, flushes the backlog, and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [...CLI, 'run', '--config', h.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const t = setInterval(() => {
        if ((out.match(/"cycle complete"/g) ?? []).length >= 2) {
          clearInterval(t);
          resolve();
        }
      }, 100);
      child.once('exit', () => reject(new Error(`agent exited early: ${out}`)));
    });
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(out).toMatch(/"stopping after the current step"/);
    // JSON lines on stdout, for journald; nothing secret in them.
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.every((l) => typeof l.level === 'number' && typeof l.time === 'string')).toBe(true);
    const key = readFileSync(h.config.signingKeyFile, 'utf8').trim().split(':')[1]!;
    expect(out).not.toContain(key);
    expect(out).not.toContain(readFileSync(h.config.clientKeyFile, 'utf8').split('\n')[1]!);
    expect((await cli('status', '--config', h.configPath, '--json')).stdout).toMatch(/"pending": 0/);
    // The evidence on disk verifies with the public key alone.
    const v = await cli('verify', join(h.config.stateDir, 'evidence'), '--pubkey', h.agentPublicKeyText);
    expect(v.stdout).toMatch(/OK: \d+ envelope\(s\) verified, chain intact/);
    expect(v.status).toBe(0);
  });

  it('refuses to start on a bad config with every problem listed (exit 2)', async () => {
    const r = await cli('run', '--config', join(tmp.path, 'nope.json'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/nope\.json: cannot read \(ENOENT\)/);
  });
});
