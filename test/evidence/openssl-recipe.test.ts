import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { EvidenceChain, exportEvidence, signReceipt } from '../../src/evidence/index.js';
import { openStateDb } from '../../src/state/index.js';
import { generateKeyFiles, loadSecretKeyFile } from '../../src/crypto/index.js';
import { tempDir } from '../helpers/tmp.js';
import { forgedEnvelope, sampleDraft } from '../helpers/evidence.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

/** The recipe exactly as the README documents it, with ENV and PUB pointed at test values. */
function readmeRecipe(envPath: string, pub: string): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const m = /<!-- openssl-recipe:start -->\n```sh\n([\s\S]*?)```\n<!-- openssl-recipe:end -->/.exec(readme);
  if (!m) throw new Error('README.md has no openssl recipe block');
  return m[1]!.replace(/^ENV=.*$/m, `ENV='${envPath}'`).replace(/^PUB=.*$/m, `PUB='${pub}'`);
}

function runRecipe(envPath: string, pub: string) {
  return spawnSync('bash', ['-euo', 'pipefail', '-c', readmeRecipe(envPath, pub)], { cwd: tmp.path, encoding: 'utf8' });
}

describe('README openssl recipe', () => {
  const keys = generateKeyFiles('appliance-1', join(tmp.path, 'keys'));
  const db = openStateDb(join(tmp.path, 'state.db'));
  const out = new EvidenceChain(db, loadSecretKeyFile(keys.secretPath), { enqueue: () => undefined }).append([sampleDraft(), sampleDraft()], ['mcp'], Date.now());
  const evDir = join(tmp.path, 'evidence');
  exportEvidence(db, evDir);
  const files = readdirSync(evDir)
    .sort()
    .map((f) => join(evDir, f));

  it('verifies a genuine envelope and prints the hash the next bundle links to', () => {
    expect(execFileSync('openssl', ['version'], { encoding: 'utf8' })).toMatch(/^OpenSSL 3/);
    const r = runRecipe(files[0]!, keys.publicKey);
    expect(r.stderr + r.stdout).toContain('Signature Verified Successfully');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe(out[1]!.bundle.prev_hash);
  });

  it('fails on a tampered payload', () => {
    const forged = join(tmp.path, 'forged.json');
    writeFileSync(
      forged,
      forgedEnvelope(files[1]!, (bundle) => ({ ...bundle, outcome: 'healed' })),
    );
    const r = runRecipe(forged, keys.publicKey);
    expect(r.status).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/Signature Verification Failure/);
  });

  it('verifies an MCP receipt with the MCP receipt key, and not with the agent key', () => {
    const mcp = generateKeyFiles('mcp-receipts', join(tmp.path, 'keys'));
    const b = out[1]!.bundle;
    const receipt = signReceipt(
      {
        receipt_id: 'rcpt-1',
        bundle_id: b.bundle_id,
        envelope_hash: out[1]!.envelopeHash,
        site_id: b.site_id,
        host_id: b.host_id,
        seq: b.seq,
        received_at: '2026-11-23T12:00:00Z',
      },
      loadSecretKeyFile(mcp.secretPath),
    );
    const file = join(tmp.path, 'receipt.json');
    writeFileSync(file, JSON.stringify(receipt));
    const r = runRecipe(file, mcp.publicKey);
    expect(r.stderr + r.stdout).toContain('Signature Verified Successfully');
    expect(r.status).toBe(0);
    expect(readFileSync(join(tmp.path, 'payload.bin'), 'utf8')).toContain(out[1]!.envelopeHash);
    expect(runRecipe(file, keys.publicKey).status).not.toBe(0);
  });

  it('fails against another public key', () => {
    const other = generateKeyFiles('other', join(tmp.path, 'keys'));
    const r = runRecipe(files[0]!, other.publicKey);
    expect(r.status).not.toBe(0);
  });
});
