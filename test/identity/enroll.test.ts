import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../testing/index.js';
import { EVIDENCE_PAYLOAD_TYPE, loadSecretKeyFile, verifyEnvelope } from '../../src/crypto/index.js';
import { EvidenceBundleSchema } from '../../src/evidence/index.js';
import { tempDir } from '../helpers/tmp.js';
import { cli } from '../helpers/cli.js';

const tmp = tempDir();
let h: Harness;

beforeAll(async () => {
  h = await startHarness(tmp.path, { enrollment: {} });
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

/** A second appliance of the same MCP: its own identity directory, config and token file. */
function appliance(name: string, token: string, overrides: Record<string, unknown> = {}): { configPath: string; identityDir: string; tokenFile: string } {
  const root = join(tmp.path, name);
  const identityDir = join(root, 'identity');
  mkdirSync(root, { recursive: true });
  const tokenFile = join(root, 'token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const raw = JSON.parse(readFileSync(h.configPath, 'utf8')) as Record<string, unknown>;
  const config = {
    ...raw,
    hostId: name,
    clientCertFile: join(identityDir, 'client-cert.pem'),
    clientKeyFile: join(identityDir, 'client-key.pem'),
    signingKeyFile: join(identityDir, 'evidence-signing.key'),
    stateDir: join(root, 'state'),
    ...overrides,
  };
  const configPath = join(root, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  return { configPath, identityDir, tokenFile };
}

function identityFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('compliance-agent enroll against the reference MCP over TLS', () => {
  let usedToken = '';

  it('enrolls once: keys made on the appliance (0600), a certificate from the MCP CA, the token deleted', async () => {
    usedToken = readFileSync(h.tokenFile!, 'utf8').trim();
    const r = await cli('enroll', '--config', h.configPath, '--token-file', h.tokenFile!);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^enrolled clinic-001\/appliance-1 at https:\/\/127\.0\.0\.1:\d+\n/);
    expect(existsSync(h.tokenFile!)).toBe(false);
    for (const f of [h.config.signingKeyFile, h.config.clientKeyFile]) expect(statSync(f).mode & 0o777).toBe(0o600);
    // openssl, not our code, says the certificate chains to the CA and is for TLS clients.
    const verified = execFileSync('openssl', ['verify', '-CAfile', h.pki.caCert, '-purpose', 'sslclient', h.config.clientCertFile], { encoding: 'utf8' });
    expect(verified.trim()).toBe(`${h.config.clientCertFile}: OK`);
    // The MCP learned a keyed machine identifier, never the raw machine id, and the evidence key.
    const rawId = readFileSync(h.config.machineIdFile, 'utf8').trim();
    const seen = h.mcp.enrollment!.enrolled;
    expect(seen).toHaveLength(1);
    expect(seen[0]!.machineId).toBe(`hmac-sha256:${createHmac('sha256', 'clinic-001').update(rawId).digest('hex')}`);
    expect(seen[0]!.machineId).not.toContain(rawId);
    expect(seen[0]!.evidenceKey).toBe(h.agentPublicKeyText);
  });

  it('the first bundle of the chain records the enrollment, signed by the new key; the cycle runs over the issued certificate', async () => {
    const rt = h.openAgent();
    const report = await rt.agent.cycle();
    await rt.close();
    expect(report.polled).toBe('none');
    const first = [...h.mcp.evidence().values()]
      .map((e) => e.envelope)
      .find((env) => {
        const v = verifyEnvelope(env, EVIDENCE_PAYLOAD_TYPE, [h.agentPublicKey]);
        return v.ok && EvidenceBundleSchema.parse(JSON.parse(v.payload.toString())).seq === 1;
      });
    expect(first).toBeDefined();
    const bundle = EvidenceBundleSchema.parse(JSON.parse(Buffer.from(first!.payload, 'base64').toString()));
    const cert = new (await import('node:crypto')).X509Certificate(readFileSync(h.config.clientCertFile));
    expect(bundle.check).toBe('enrollment');
    expect(bundle.post_state).toMatchObject({
      machine_id: h.mcp.enrollment!.enrolled[0]!.machineId,
      evidence_key: h.agentPublicKeyText,
      certificate_serial: cert.serialNumber.toLowerCase(),
      certificate_not_after: new Date(cert.validTo).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    });
    expect(String(bundle.post_state!['evidence_key_fingerprint'])).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(first!.signatures[0]!.keyid).toBe(loadSecretKeyFile(h.config.signingKeyFile).keyId);
  });

  it('a second use of the token: one line, nothing on disk', async () => {
    const a = appliance('second-use', usedToken);
    const r = await cli('enroll', '--config', a.configPath, '--token-file', a.tokenFile);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('error: enroll_refused: enrollment refused by the MCP (HTTP 401): the enrollment token was already used (token_used); nothing was enrolled\n');
    expect(identityFiles(a.identityDir)).toEqual([]);
  });

  it('an expired token: one line, nothing on disk', async () => {
    const a = appliance('expired', h.mcp.enrollment!.issueToken('clinic-001', -1000));
    const r = await cli('enroll', '--config', a.configPath, '--token-file', a.tokenFile);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: enroll_refused: enrollment refused by the MCP \(HTTP 401\): the enrollment token expired at \S+ \(token_expired\); nothing was enrolled\n$/);
    expect(identityFiles(a.identityDir)).toEqual([]);
  });

  it('a token for another site: one line, nothing on disk', async () => {
    const a = appliance('other-site', h.mcp.enrollment!.issueToken('clinic-002'));
    const r = await cli('enroll', '--config', a.configPath, '--token-file', a.tokenFile);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      'error: enroll_refused: enrollment refused by the MCP (HTTP 403): the token was issued for another site than clinic-001 (token_wrong_site); nothing was enrolled\n',
    );
    expect(identityFiles(a.identityDir)).toEqual([]);
  });

  it('a wrong CA: one line, nothing on disk, the token never sent (still usable)', async () => {
    const token = h.mcp.enrollment!.issueToken('clinic-001');
    const a = appliance('wrong-ca', token, { caFile: h.pki.rogueCaCert });
    const r = await cli('enroll', '--config', a.configPath, '--token-file', a.tokenFile);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^error: enroll_transport: enrollment failed, nothing enrolled: TLS to 127\.0\.0\.1:\d+ failed: server certificate is not signed by the CA in \S+rogue-ca\.pem \(\w+\)\n$/,
    );
    expect(identityFiles(a.identityDir)).toEqual([]);
    expect(readFileSync(a.tokenFile, 'utf8').trim()).toBe(token);
    // With the right CA the same token then works.
    const good = appliance('wrong-ca-then-right', token);
    expect((await cli('enroll', '--config', good.configPath, '--token-file', good.tokenFile)).status).toBe(0);
  });

  it('rerun when enrolled: says so, changes nothing', async () => {
    const before = readFileSync(h.config.clientCertFile, 'utf8');
    const r = await cli('enroll', '--config', h.configPath, '--token-file', h.tokenFile!);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^already enrolled: certificate [0-9a-f]+, valid until /);
    expect(readFileSync(h.config.clientCertFile, 'utf8')).toBe(before);
  });
});
