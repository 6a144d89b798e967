import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyFiles } from '../../src/crypto/index.js';
import { tempDir } from '../helpers/tmp.js';

// order sign takes its sequence from the MSP's per-site state file (locked, atomic) or an explicit
// --sequence, refuses without one, and refuses a TTL no appliance accepts, saying why in one line.
const tmp = tempDir('ca-order-seq-');
afterAll(() => tmp.cleanup());
let keyPath = '';
const heal = { site_id: 'clinic-001', host_id: 'appliance-1', policy_version: '1.0', type: 'heal', params: { checks: ['services'] } };
const heartbeat = { site_id: 'clinic-001', host_id: 'appliance-1', policy_version: '1.0', type: 'heartbeat', params: {} };

beforeAll(() => {
  keyPath = generateKeyFiles('msp-2026', join(tmp.path, 'keys')).secretPath;
});

function cli(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8', input });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function cliAsync(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args]);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
    c.stdin.end(input);
  });
}

const sequenceOf = (envelopeText: string): number =>
  (JSON.parse(Buffer.from((JSON.parse(envelopeText) as { payload: string }).payload, 'base64').toString('utf8')) as { sequence: number }).sequence;

describe('order sign sequence', () => {
  it('refuses to sign without a sequence, saying where one comes from', () => {
    const r = cli(['order', 'sign', '--key', keyPath, '-'], JSON.stringify(heal));
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^order sign needs a sequence: --sequence-file PATH .* or --sequence N; /);
  });

  it('two orders signed in the same second from the state file get consecutive sequences, and the file keeps the last', () => {
    const file = join(tmp.path, 'clinic-001.seq');
    const a = cli(['order', 'sign', '--key', keyPath, '--sequence-file', file, '-'], JSON.stringify(heal));
    const b = cli(['order', 'sign', '--key', keyPath, '--sequence-file', file, '-'], JSON.stringify(heartbeat));
    expect([a.code, b.code]).toEqual([0, 0]);
    expect([sequenceOf(a.stdout), sequenceOf(b.stdout)]).toEqual([1, 2]);
    expect(readFileSync(file, 'utf8')).toBe('2\n');
    expect(existsSync(`${file}.lock`)).toBe(false);
    // An explicit small sequence still works alongside (nothing clock-derived outgrew it).
    expect(sequenceOf(cli(['order', 'sign', '--key', keyPath, '--sequence', '3', '-'], JSON.stringify(heal)).stdout)).toBe(3);
  });

  it('concurrent signers on one state file never share a sequence', async () => {
    const file = join(tmp.path, 'clinic-002.seq');
    const runs = await Promise.all(Array.from({ length: 4 }, () => cliAsync(['order', 'sign', '--key', keyPath, '--sequence-file', file, '-'], JSON.stringify(heal))));
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0]);
    expect(runs.map((r) => sequenceOf(r.stdout)).sort()).toEqual([1, 2, 3, 4]);
    expect(readFileSync(file, 'utf8')).toBe('4\n');
  });

  it('an order that does not validate uses up no sequence; a held lock and a corrupt file are refused by name', () => {
    const file = join(tmp.path, 'clinic-003.seq');
    writeFileSync(file, '41\n');
    const bad = cli(['order', 'sign', '--key', keyPath, '--sequence-file', file, '-'], JSON.stringify({ ...heal, type: 'reboot' }));
    expect(bad.code).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe('41\n');
    writeFileSync(`${file}.lock`, '1\n');
    const locked = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `import('./src/orders/index.ts').then((m) => { try { m.withNextSequence(${JSON.stringify(file)}, () => 0, 200); } catch (e) { console.log(e.message); } })`,
      ],
      { encoding: 'utf8' },
    );
    expect(locked.stdout).toContain(`another order sign has held ${file}.lock`);
    unlinkSync(`${file}.lock`);
    writeFileSync(file, 'forty-one\n');
    const corrupt = cli(['order', 'sign', '--key', keyPath, '--sequence-file', file, '-'], JSON.stringify(heal));
    expect(corrupt.code).toBe(1);
    expect(corrupt.stderr).toContain(`${file}: must hold the last sequence signed`);
  });
});

describe('order sign --ttl', () => {
  it('refuses 0 and a TTL over the largest orderTtl with a one-line reason', () => {
    const zero = cli(['order', 'sign', '--key', keyPath, '--sequence', '1', '--ttl', '0', '-'], JSON.stringify(heal));
    expect(zero.code).toBe(2);
    expect(zero.stderr).toBe('--ttl 0: an order must live at least 1 second (issued_at to expires_at)\n');
    const huge = cli(['order', 'sign', '--key', keyPath, '--sequence', '1', '--ttl', '99999999', '-'], JSON.stringify(heal));
    expect(huge.code).toBe(2);
    expect(huge.stderr).toBe('--ttl 99999999: over 86400 s, the largest orderTtl an appliance accepts: every appliance would refuse it (ttl_too_long)\n');
    const max = cli(['order', 'sign', '--key', keyPath, '--sequence', '1', '--ttl', '86400', '-'], JSON.stringify(heartbeat));
    expect(max.code).toBe(0);
    expect(max.stderr).toBe('note: appliances refuse orders living longer than their orderTtl (default 900 s)\n');
  });
});
