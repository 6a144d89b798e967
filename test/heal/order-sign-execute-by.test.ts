import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { generateKeyFiles } from '../../src/crypto/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('ca-order-exec-by-');
afterAll(() => tmp.cleanup());

function cli(args: string[], input: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'order', 'sign', ...args], { encoding: 'utf8', input });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function sign(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const order = { site_id: 'clinic-001', host_id: 'appliance-1', policy_version: '1.0', type: 'heal', params: { checks: ['patching'] } };
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'order', 'sign', ...args, '--sequence', '7', '-'], { encoding: 'utf8', input: JSON.stringify(order) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('order sign --execute-within: how long a disruptive heal may wait for the window', () => {
  it('sets execute_by that long after issued_at; a malformed duration is a usage error', () => {
    const key = generateKeyFiles('msp-2026', join(tmp.path, 'keys')).secretPath;
    const r = sign(['--key', key, '--execute-within', '36h']);
    expect(r.stderr).toBe('');
    const payload = JSON.parse(Buffer.from((JSON.parse(r.stdout) as { payload: string }).payload, 'base64').toString()) as Record<string, string>;
    expect(Date.parse(payload.execute_by!) - Date.parse(payload.issued_at!)).toBe(36 * 3_600_000);
    expect(Date.parse(payload.expires_at!) - Date.parse(payload.issued_at!)).toBe(900_000);
    expect(sign(['--key', key, '--execute-within', 'a week']).code).toBe(2);
    expect(sign(['--key', key, '--execute-within', '0']).code).toBe(2);
    // Shorter than the TTL: execute_by would come before expires_at, which the agent refuses too.
    const early = sign(['--key', key, '--execute-within', '60s']);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain('execute_by must not be before expires_at');
  });

  it('a co-signer sees execute_by and signs it unchanged; --cosign with --execute-within or --ttl is a usage error', () => {
    const a = generateKeyFiles('msp-a', join(tmp.path, 'a')).secretPath;
    const b = generateKeyFiles('msp-b', join(tmp.path, 'b')).secretPath;
    const first = sign(['--key', a, '--execute-within', '36h']);
    expect(first.code, first.stderr).toBe(0);
    const payload = (JSON.parse(first.stdout) as { payload: string }).payload;
    const executeBy = (JSON.parse(Buffer.from(payload, 'base64').toString()) as { execute_by: string }).execute_by;
    const second = cli(['--key', b, '--cosign', '-'], first.stdout);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`, execute by ${executeBy}; 2 signature(s)`);
    expect((JSON.parse(second.stdout) as { payload: string }).payload).toBe(payload);
    for (const extra of [
      ['--execute-within', '7d'],
      ['--ttl', '60'],
    ]) {
      const misuse = cli(['--key', b, '--cosign', '-', ...extra], first.stdout);
      expect(misuse.code, extra.join(' ')).toBe(2);
      expect(misuse.stdout).toBe('');
    }
  });
});
