import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyFiles } from '../../src/crypto/index.js';
import { openStateDb, stateLayout } from '../../src/state/index.js';
import { sqliteOrderState, verifyContextFromConfig, verifyOrder } from '../../src/orders/index.js';
import { loadConfig } from '../../src/config/index.js';
import { tempDir } from '../helpers/tmp.js';
import { cliConfig } from './fixtures.js';

const tmp = tempDir('ca-order-cli-');
afterAll(() => tmp.cleanup());

function cli(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8', input, cwd: process.cwd() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let keyPath = '';
let otherKeyPath = '';
let configPath = '';
const order = { site_id: 'clinic-001', host_id: 'appliance-1', policy_version: '1.0', type: 'heal', params: { checks: ['services'] } };

beforeAll(() => {
  const msp = generateKeyFiles('msp-2026', join(tmp.path, 'keys'));
  keyPath = msp.secretPath;
  otherKeyPath = generateKeyFiles('msp-2026', join(tmp.path, 'other')).secretPath;
  configPath = join(tmp.path, 'config.json');
  writeFileSync(configPath, cliConfig({ trustedOrderKeys: [msp.publicKey], stateDir: join(tmp.path, 'state') }));
  writeFileSync(join(tmp.path, 'order.json'), JSON.stringify(order));
});

describe('compliance-agent order sign | verify', () => {
  it('signs an order that verify accepts (exit 0) without creating any state', () => {
    const signed = cli(['order', 'sign', '--key', keyPath, '--sequence-file', join(tmp.path, 'clinic-001.seq'), join(tmp.path, 'order.json')]);
    expect(signed.stderr).toBe('');
    expect(signed.code).toBe(0);
    const env = JSON.parse(signed.stdout) as { payloadType: string; signatures: Array<{ keyid: string }> };
    expect(env.payloadType).toBe('application/vnd.compliance-agent.order+json;version=1');
    expect(env.signatures[0]!.keyid).toBe('msp-2026');
    const v = cli(['order', 'verify', '--config', configPath, '-'], signed.stdout);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^accepted: heal order [0-9a-f-]{36} \(sequence \d+, signed by msp-2026/);
    expect(v.stderr).toContain('no state database');
    expect(existsSync(join(tmp.path, 'state'))).toBe(false);
  });

  it('reads the state database read-only: an order the agent already took reads as replayed, and nothing changes', () => {
    const signed = cli(['order', 'sign', '--key', keyPath, '--sequence', '1000', '-'], JSON.stringify(order));
    const config = loadConfig(configPath);
    const db = openStateDb(stateLayout(config.stateDir).db);
    expect(verifyOrder(signed.stdout, verifyContextFromConfig(config, Date.now()), sqliteOrderState(db)).decision).toBe('accepted');
    const count = () => (db.prepare('SELECT count(*) AS n FROM orders_seen').get() as { n: number }).n;
    const before = count();
    const envPath = join(tmp.path, 'taken.json');
    writeFileSync(envPath, signed.stdout);
    const v = cli(['order', 'verify', '--config', configPath, '--json', envPath]);
    expect(v.code).toBe(1);
    expect(JSON.parse(v.stdout)).toMatchObject({ decision: 'rejected', reason: 'replayed' });
    // A fresh order that is signed before the taken one has a lower sequence.
    const fresh = cli(['order', 'sign', '--key', keyPath, '-'], JSON.stringify({ ...order, sequence: 1 }));
    const v2 = cli(['order', 'verify', '--config', configPath, '-'], fresh.stdout);
    expect(v2.code).toBe(1);
    expect(v2.stdout).toMatch(/^rejected: stale_sequence: sequence 1 is not above the last accepted/);
    expect(count()).toBe(before);
    db.close();
  });

  it('rejects an order signed by a key of the same name that is not the trusted one, and a TTL over orderTtl', () => {
    const forged = cli(['order', 'sign', '--key', otherKeyPath, '--sequence', '5000', '-'], JSON.stringify(order));
    const v = cli(['order', 'verify', '--config', configPath, '-'], forged.stdout);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^rejected: bad_signature/);
    const long = cli(['order', 'sign', '--key', keyPath, '--ttl', '3600', '--sequence', '5001', '-'], JSON.stringify(order));
    const v2 = cli(['order', 'verify', '--config', configPath, '-'], long.stdout);
    expect(v2.stdout).toMatch(/^rejected: ttl_too_long: order lives 3600 s, over orderTtl 900 s/);
  });

  it('sign refuses an order outside the vocabulary, naming the problem, and prints no envelope', () => {
    const r = cli(['order', 'sign', '--key', keyPath, '--sequence', '1', '-'], JSON.stringify({ ...order, params: { checks: ['services'], unit: 'evil.service' } }));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('bad_params');
    expect(r.stderr).toContain('unit');
  });

  it('sign names an ORDER file that is not JSON without quoting it (the key given there by mistake stays out of the terminal)', () => {
    const r = cli(['order', 'sign', '--key', keyPath, keyPath]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${keyPath}: not valid JSON\n`);
  });

  it('usage errors exit 2', () => {
    expect(cli(['order']).code).toBe(2);
    expect(cli(['order', 'sign', '-']).code).toBe(2);
    expect(cli(['order', 'verify', '-']).code).toBe(2);
  });
});
