import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../testing/index.js';
import { canonicalEnvelope, generateKeyFiles, loadSecretKeyFile, signEnvelope, EVIDENCE_PAYLOAD_TYPE, type Envelope } from '../../src/crypto/index.js';
import { EvidenceBundleSchema, type EvidenceBundle } from '../../src/evidence/index.js';
import { stateLayout } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

const tmp = tempDir();
let h: Harness;
let firstKey = '';
let evidenceDir = '';
let oldSecret: ReturnType<typeof loadSecretKeyFile>;

const envelopeFiles = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
const readEnvelope = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Envelope;
const bundleOf = (env: Envelope): EvidenceBundle => EvidenceBundleSchema.parse(JSON.parse(Buffer.from(env.payload, 'base64').toString()));

beforeAll(async () => {
  h = await startHarness(tmp.path, { enrollment: {} });
  const enrolled = await h.enroll();
  if (enrolled.kind !== 'enrolled') throw new Error('not enrolled');
  firstKey = enrolled.record.evidence_key;
  oldSecret = loadSecretKeyFile(h.config.signingKeyFile);
  const rt = h.openAgent();
  await rt.agent.cycle();
  const staged = await cli('rotate-key', '--config', h.configPath);
  expect(staged.stderr).toBe('');
  expect(staged.status).toBe(0);
  h.host.advance(60_000);
  await rt.agent.cycle();
  // Drift after the rotation, so the new key has bundles to sign.
  h.host.stopService('postgresql.service');
  h.host.advance(60_000);
  await rt.agent.cycle();
  evidenceDir = stateLayout(h.config.stateDir).evidence;
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

describe('evidence key rotation', () => {
  it('a rotation bundle signed by the old key introduces the new key, which signs every later bundle; the MCP follows it', () => {
    const envs = envelopeFiles(evidenceDir).map(readEnvelope);
    const i = envs.findIndex((e) => bundleOf(e).check === 'key_rotation');
    expect(i).toBeGreaterThan(0);
    const rotation = bundleOf(envs[i]!);
    const oldName = firstKey.split(':')[0];
    const current = loadSecretKeyFile(h.config.signingKeyFile);
    expect(envs[i]!.signatures[0]!.keyid).toBe(oldName);
    expect(rotation.pre_state).toMatchObject({ key: firstKey });
    expect(rotation.post_state).toMatchObject({ new_key: h.agentPublicKeyText });
    expect(current.keyId).not.toBe(oldName);
    for (const e of envs.slice(0, i + 1)) expect(e.signatures[0]!.keyid).toBe(oldName);
    for (const e of envs.slice(i + 1)) expect(e.signatures[0]!.keyid).toBe(current.keyId);
    expect(envs.length - i - 1).toBeGreaterThanOrEqual(1);
    expect(h.mcp.stats().rejected).toBe(0);
    expect(h.mcp.evidence().size).toBe(envs.length);
  });

  it('verify accepts the chain across the rotation given only the first public key', async () => {
    const r = await cli('verify', evidenceDir, '--pubkey', firstKey);
    expect(r.stdout).toMatch(/OK: \d+ envelope\(s\) verified, chain intact\n$/);
    expect(r.status).toBe(0);
  });

  it('verify refuses a rotation not signed by the previous key, and every bundle its key signed', async () => {
    const forgedDir = join(tmp.path, 'forged-rotation');
    cpSync(evidenceDir, forgedDir, { recursive: true });
    const files = envelopeFiles(forgedDir);
    const i = files.findIndex((f) => bundleOf(readEnvelope(f)).check === 'key_rotation');
    const attacker = loadSecretKeyFile(generateKeyFiles('attacker', join(tmp.path, 'attacker')).secretPath);
    // The attacker rewrites the rotation to introduce their own key, signed with that key.
    const bundle = bundleOf(readEnvelope(files[i]!));
    const forged = { ...bundle, post_state: { ...bundle.post_state, new_key: `attacker:${Buffer.from(attacker.publicKey).toString('base64')}` } };
    writeFileSync(files[i]!, canonicalEnvelope(signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify(forged)), attacker)) + '\n');
    const r = await cli('verify', forgedDir, '--pubkey', firstKey);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      /^FAIL unknown_key: \d{10}-[0-9a-f-]+\.json: key rotation to attacker:\S+ is not signed by the current evidence key \(no trusted key named "attacker"\); the key it introduces is not trusted$/m,
    );
    expect(r.stdout).toMatch(/FAILED: \d+ problem\(s\)/);
  });

  it('verify refuses a bundle signed by the retired key after the rotation', async () => {
    const dir = join(tmp.path, 'old-key-after');
    cpSync(evidenceDir, dir, { recursive: true });
    const files = envelopeFiles(dir);
    const last = files.at(-1)!;
    // What a thief of the old key could do after the rotation: sign a later bundle with it.
    writeFileSync(last, canonicalEnvelope(signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(readEnvelope(last).payload, 'base64'), oldSecret)) + '\n');
    const r = await cli('verify', dir, '--pubkey', firstKey);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^FAIL unknown_key: ${last.split('/').at(-1)}: no trusted key named "${oldSecret.keyId}"$`, 'm'));
  });

  it("the README's openssl recipe verifies each envelope across the rotation", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const recipe = /<!-- openssl-recipe:start -->\n```sh\n([\s\S]*?)```\n<!-- openssl-recipe:end -->/.exec(readme)![1]!;
    const follow = /<!-- openssl-rotation:start -->\n```sh\n([\s\S]*?)```\n<!-- openssl-rotation:end -->/.exec(readme)![1]!;
    const run = (env: string, pub: string, extra = '') =>
      spawnSync('bash', ['-euo', 'pipefail', '-c', recipe.replace(/^ENV=.*$/m, `ENV='${env}'`).replace(/^PUB=.*$/m, `PUB='${pub}'`) + extra], { cwd: tmp.path, encoding: 'utf8' });
    const files = envelopeFiles(evidenceDir);
    let pub = firstKey;
    let rotations = 0;
    for (const f of files) {
      const r = run(f, pub, follow);
      expect(r.stdout + r.stderr, f).toContain('Signature Verified Successfully');
      expect(r.status).toBe(0);
      const introduced = r.stdout.trim().split('\n').at(-1)!;
      if (/^[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=$/.test(introduced)) {
        pub = introduced;
        rotations++;
      }
    }
    expect(rotations).toBe(1);
    expect(pub).toBe(h.agentPublicKeyText);
    // The retired key no longer verifies what came after.
    expect(run(files.at(-1)!, firstKey).status).not.toBe(0);
  });
});
