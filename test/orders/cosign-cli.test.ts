import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addSignature, generateKeyFiles, loadSecretKeyFile, type Envelope } from '../../src/crypto/index.js';
import { cliConfig, orderPayload, signPayload } from './fixtures.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('ca-cosign-cli-');
afterAll(() => tmp.cleanup());

function cli(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8', input, cwd: process.cwd() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const keys: Record<string, string> = {};
let configPath = '';
const rollback = { site_id: 'clinic-001', host_id: 'appliance-1', policy_version: '1.0', type: 'rollback', params: {} };

/** Write an envelope to a file and return its path. */
function save(name: string, env: unknown): string {
  const path = join(tmp.path, `${name}.json`);
  writeFileSync(path, typeof env === 'string' ? env : JSON.stringify(env));
  return path;
}

function signed(key: string): string {
  const r = cli(['order', 'sign', '--key', keys[key]!, '--sequence-file', join(tmp.path, 'clinic-001.seq'), save('rollback-draft', rollback)]);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

function cosign(key: string, env: string): { code: number | null; stdout: string; stderr: string } {
  return cli(['order', 'sign', '--key', keys[key]!, '--cosign', '-'], env);
}

function verify(env: string): { code: number | null; stdout: string; stderr: string } {
  return cli(['order', 'verify', '--config', configPath, '-'], env);
}

beforeAll(() => {
  const a = generateKeyFiles('msp-a', join(tmp.path, 'a'));
  const b = generateKeyFiles('msp-b', join(tmp.path, 'b'));
  keys.a = a.secretPath;
  keys.b = b.secretPath;
  keys.attacker = generateKeyFiles('attacker', join(tmp.path, 'x')).secretPath;
  // A forger who knows the name msp-b but not its key.
  keys.fakeB = generateKeyFiles('msp-b', join(tmp.path, 'fake-b')).secretPath;
  // The same key as msp-a under a second name, listed twice in config.
  keys.aCopy = join(tmp.path, 'msp-a-copy.key');
  writeFileSync(keys.aCopy, readFileSync(a.secretPath, 'utf8').replace(/^msp-a:/, 'msp-a-copy:'), { mode: 0o600 });
  configPath = join(tmp.path, 'config.json');
  writeFileSync(
    configPath,
    cliConfig({
      baselinePath: join(tmp.path, 'no-baseline.json'),
      trustedOrderKeys: [a.publicKey, a.publicKey.replace(/^msp-a:/, 'msp-a-copy:'), b.publicKey],
      orderSignaturesRequired: { rollback: 2, apply_baseline: 2, apply_closure: 2 },
      allowedFlakes: ['github:msp/sites', 'git+https://git.msp.example/sites'],
      stateDir: join(tmp.path, 'state'),
    }),
  );
});

describe('order verify refuses every unpinned, local, tarball, user-info and off-allowlist reference', () => {
  const REV = '0123456789abcdef0123456789abcdef01234567';
  const twoSigned = (flakeRef: string) => {
    const env = signPayload(
      orderPayload({ site_id: 'clinic-001', host_id: 'appliance-1', type: 'apply_baseline', params: { revision: REV, flakeRef } }, Date.now()),
      loadSecretKeyFile(keys.a!),
    );
    return JSON.stringify(addSignature(env, loadSecretKeyFile(keys.b!)));
  };
  it.each([
    ['a branch, not a pin', 'github:msp/sites?ref=main#appliance', 'bad_params: apply_baseline: params.flakeRef: must pin an immutable revision'],
    ['a local path:', `path:/var/lib/compliance-agent/x?rev=${REV}#appliance`, 'bad_params: apply_baseline: params.flakeRef: must be git+https://, github:, gitlab: or sourcehut:'],
    ['a tarball', `tarball+https://evil.example/x.tar.gz?rev=${REV}#appliance`, 'bad_params: apply_baseline: params.flakeRef: must be git+https://'],
    ['a token in the URL', `git+https://oauth2:glpat-SECRET@git.msp.example/sites?rev=${REV}#appliance`, 'bad_params: apply_baseline: params.flakeRef: must not carry user info'],
    [
      'another repository',
      `github:attacker/sites?rev=${REV}#appliance`,
      'flake_not_allowed: params.flakeRef: github:attacker/sites is not under allowedFlakes (github:msp/sites, git+https://git.msp.example/sites)',
    ],
  ])('%s', (_what, flakeRef, expected) => {
    const v = verify(twoSigned(flakeRef));
    expect(v.code).toBe(1);
    expect(v.stdout.startsWith(`rejected: ${expected}`), v.stdout).toBe(true);
    expect(v.stdout).not.toContain('glpat-SECRET');
  });

  it('a pinned reference of an allowed repository, signed by two keys: accepted', () => {
    const v = verify(twoSigned(`git+https://git.msp.example/sites?ref=main&rev=${REV}#appliance`));
    expect(v.stdout).toMatch(/^accepted: apply_baseline order .* signed by msp-a, msp-b,/);
  });
});

describe('threshold signatures through order sign --cosign and order verify', () => {
  it('0 distinct valid signers: rejected (unknown key)', () => {
    const v = verify(signed('attacker'));
    expect(v.code).toBe(1);
    expect(v.stdout).toBe('rejected: unknown_key: no trusted key named "attacker"\n');
  });

  it('1 valid signer where 2 are required: one line explaining the shortfall', () => {
    const v = verify(signed('a'));
    expect(v.code).toBe(1);
    expect(v.stdout).toBe('rejected: insufficient_signatures: rollback needs 2 distinct trusted signers, has 1 (msp-a)\n');
  });

  it('2 distinct valid signers (co-signed on a second machine): accepted', () => {
    const first = signed('a');
    const second = cosign('b', first);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/^co-signed by msp-b: rollback order [0-9a-f-]{36} for clinic-001\/appliance-1 \{\}, expires .*; 2 signature\(s\)\n$/);
    const env = JSON.parse(second.stdout) as Envelope;
    // The payload and the first signature are untouched.
    expect(env.payload).toBe((JSON.parse(first) as Envelope).payload);
    expect(env.signatures.map((s) => s.keyid)).toEqual(['msp-a', 'msp-b']);
    const v = verify(second.stdout);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^accepted: rollback order [0-9a-f-]{36} \(sequence \d+, signed by msp-a, msp-b, expires /);
  });

  it('duplicate signers count once: the same key under a second configured name, or the same signature twice', () => {
    const sameKey = cosign('aCopy', signed('a'));
    expect(sameKey.code, sameKey.stderr).toBe(0);
    expect(verify(sameKey.stdout).stdout).toBe('rejected: insufficient_signatures: rollback needs 2 distinct trusted signers, has 1 (msp-a)\n');
    const env = JSON.parse(signed('a')) as Envelope;
    const twice = JSON.stringify({ ...env, signatures: [env.signatures[0], env.signatures[0]] });
    expect(verify(twice).stdout).toBe('rejected: insufficient_signatures: rollback needs 2 distinct trusted signers, has 1 (msp-a)\n');
    // order sign refuses to add a key that already signed.
    const again = cosign('a', signed('a'));
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('key msp-a already signed this envelope');
  });

  it('one valid plus one forged signature: 1 signer, and the forgery is named', () => {
    const forged = cosign('fakeB', signed('a'));
    expect(forged.code, forged.stderr).toBe(0);
    const v = verify(forged.stdout);
    expect(v.code).toBe(1);
    expect(v.stdout).toBe('rejected: insufficient_signatures: rollback needs 2 distinct trusted signers, has 1 (msp-a); other signatures: 1 did not verify\n');
  });

  it('a type with no threshold set needs one signer', () => {
    const r = cli([
      'order',
      'sign',
      '--key',
      keys.b!,
      '--sequence-file',
      join(tmp.path, 'clinic-001.seq'),
      save('heal', { ...rollback, type: 'heal', params: { checks: ['services'] } }),
    ]);
    expect(verify(r.stdout).stdout).toMatch(/^accepted: heal order .* signed by msp-b,/);
  });

  it('co-signing refuses what is not an order envelope, and prints nothing', () => {
    const notAnOrder = cosign(
      'b',
      JSON.stringify({
        payloadType: 'application/vnd.compliance-agent.order+json;version=1',
        payload: Buffer.from('{"type":"exec"}').toString('base64'),
        signatures: [{ keyid: 'msp-a', sig: 'AAAA' }],
      }),
    );
    expect(notAnOrder.code).toBe(1);
    expect(notAnOrder.stdout).toBe('');
    expect(notAnOrder.stderr).toContain('order is not valid (bad_payload)');
    expect(cli(['order', 'sign', '--key', keys.b!, '--cosign', '-', 'extra.json']).code).toBe(2);
  });

  it('a threshold above the number of distinct trusted keys, or for a type that does not exist, is a config error', () => {
    const cfg = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    const tooHigh = save('too-high', { ...cfg, orderSignaturesRequired: { rollback: 3 } });
    const r = cli(['order', 'verify', '--config', tooHigh, '-'], signed('a'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('orderSignaturesRequired.rollback: requires 3 signers but trustedOrderKeys holds 2 distinct key(s)');
    const typo = save('typo', { ...cfg, orderSignaturesRequired: { rolback: 2 } });
    const t = cli(['order', 'verify', '--config', typo, '-'], signed('a'));
    expect(t.code).toBe(2);
    expect(t.stderr).toContain('orderSignaturesRequired: "rolback" is not an order type');
  });
});
