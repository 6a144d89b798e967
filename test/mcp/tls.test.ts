import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect, type ConnectionOptions } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentError } from '../../src/common/index.js';
import { generatePki, type Pki, startReferenceMcp, type ReferenceMcp } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';
import { agentKey, clientFor, evidenceEnvelope } from './fixtures.js';

const tmp = tempDir('mcp-tls-');
const key = agentKey('appliance-1');
let pki: Pki;
let mcp: ReferenceMcp;
const extra: ReferenceMcp[] = [];

beforeAll(async () => {
  pki = await generatePki(join(tmp.path, 'pki'), { clientCn: 'appliance-1' });
  mcp = await startReferenceMcp({ pki, agentKeys: [key.pub] });
});

afterAll(async () => {
  await Promise.all([mcp, ...extra].map((m) => m.stop()));
  tmp.cleanup();
});

async function serverWith(overrides: Partial<Pki>): Promise<ReferenceMcp> {
  const m = await startReferenceMcp({ pki: { ...pki, ...overrides }, agentKeys: [key.pub] });
  extra.push(m);
  return m;
}

async function orderFailure(url: string, overrides: Parameters<typeof clientFor>[2] = {}) {
  const c = clientFor(pki, url, overrides);
  try {
    const r = await c.nextOrder();
    if (r.ok) throw new Error('expected a failure');
    return r.error;
  } finally {
    await c.close();
  }
}

/** A raw TLS exchange: what the server does with a client that is not the agent. */
function rawHttps(opts: ConnectionOptions): Promise<{ handshake: boolean; response: string }> {
  return new Promise((resolve) => {
    let response = '';
    let handshake = false;
    const s = connect({ host: '127.0.0.1', port: mcp.port, servername: 'localhost', ca: readFileSync(pki.caCert), ...opts });
    s.on('secureConnect', () => {
      handshake = true;
      s.write('GET /orders/next?site_id=clinic-001&host_id=appliance-1 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n');
    });
    s.on('data', (d: Buffer) => (response += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ handshake, response }));
  });
}

describe('the agent pins the MCP CA', () => {
  it('refuses a server whose certificate another CA signed, in one line naming the server, the CA file and the failure', async () => {
    const rogue = await serverWith({ serverCert: pki.rogueServerCert, serverKey: pki.rogueServerKey });
    rogue.enqueueOrder(evidenceEnvelope(key.secret, 1));
    const url = rogue.url.replace('127.0.0.1', 'localhost');
    const e = await orderFailure(url);
    expect(e).toEqual({
      code: 'tls',
      message: `TLS to localhost:${rogue.port} failed: server certificate is not signed by the CA in ${pki.caCert} (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
      retryable: true,
    });
    expect(e.message).not.toContain('\n');
    const c = clientFor(pki, url);
    expect(await c.postEvidence(evidenceEnvelope(key.secret, 2))).toEqual({ kind: 'retry', error: e.message });
    await c.close();
    expect(rogue.stats()).toMatchObject({ posts: 0, ordersServed: 0 });
  });

  it('refuses an expired server certificate', async () => {
    const expired = await serverWith({ serverCert: pki.expiredServerCert });
    expect(await orderFailure(expired.url)).toEqual({
      code: 'tls',
      message: `TLS to 127.0.0.1:${expired.port} failed: server certificate has expired (CERT_HAS_EXPIRED)`,
      retryable: true,
    });
  });

  it('refuses a server certificate for another name', async () => {
    const other = await generatePki(join(tmp.path, 'other'), { serverNames: ['mcp.other.example'] });
    const wrongName = await serverWith({ caCert: other.caCert, serverCert: other.serverCert, serverKey: other.serverKey });
    const e = await orderFailure(wrongName.url.replace('127.0.0.1', 'localhost'), { caFile: other.caCert });
    expect(e.code).toBe('tls');
    expect(e.message).toMatch(
      new RegExp(`^TLS to localhost:${wrongName.port} failed: server certificate is not valid for localhost: .*mcp\\.other\\.example.* \\(ERR_TLS_CERT_ALTNAME_INVALID\\)$`),
    );
  });

  it('trusts only caFile: the real MCP is refused when caFile names another CA', async () => {
    const e = await orderFailure(mcp.url, { caFile: pki.rogueCaCert });
    expect(e.code).toBe('tls');
    expect(e.message).toContain(`not signed by the CA in ${pki.rogueCaCert}`);
  });
});

describe('the MCP requires a client certificate from its CA', () => {
  it('serves a client with the CA-signed certificate (control)', async () => {
    const r = await rawHttps({ cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) });
    expect(r.response).toMatch(/^HTTP\/1\.1 204 /);
  });

  it('refuses a client without a certificate before any HTTP', async () => {
    const before = mcp.stats();
    const r = await rawHttps({});
    expect(r.response).toBe('');
    const after = mcp.stats();
    expect(after.connections).toBe(before.connections + 1);
    expect({ ...after, connections: before.connections }).toEqual(before);
  });

  it('refuses the agent with a certificate from another CA, and says which cert file', async () => {
    const e = await orderFailure(mcp.url, { clientCertFile: pki.rogueClientCert, clientKeyFile: pki.rogueClientKey });
    expect(e.code).toBe('tls');
    expect(e.message).toBe(
      `TLS to 127.0.0.1:${mcp.port} failed: server closed the connection right after the handshake without answering; it most likely refused the client certificate in ${pki.rogueClientCert} (UND_ERR_SOCKET)`,
    );
  });

  it('refuses an expired client certificate, and the message says it expired', async () => {
    const e = await orderFailure(mcp.url, { clientCertFile: pki.expiredClientCert });
    expect(e.code).toBe('tls');
    expect(e.message).toContain(`refused the client certificate in ${pki.expiredClientCert} (it expired 2020-02-01T00:00:00.000Z)`);
  });
});

describe('client configuration errors are caught at create, naming the file and never its contents', () => {
  function configError(overrides: Parameters<typeof clientFor>[2]): AgentError {
    try {
      clientFor(pki, mcp.url, overrides);
    } catch (e) {
      if (e instanceof AgentError) return e;
      throw e;
    }
    throw new Error('expected an AgentError');
  }

  it('missing files', () => {
    const e = configError({ clientKeyFile: join(tmp.path, 'nope.key') });
    expect(e.code).toBe('mcp_config');
    expect(e.message).toBe(`clientKeyFile ${join(tmp.path, 'nope.key')}: cannot read (ENOENT)`);
    expect(configError({ caFile: join(tmp.path, 'none.pem') }).message).toBe(`caFile ${join(tmp.path, 'none.pem')}: cannot read (ENOENT)`);
  });

  it('a key that is not the certificate key, or not a key at all', async () => {
    const mismatch = configError({ clientKeyFile: pki.serverKey });
    expect(mismatch.message).toBe(`clientKeyFile ${pki.serverKey} does not belong to clientCertFile ${pki.clientCert}`);
    const garbage = join(tmp.path, 'garbage.key');
    await writeFile(garbage, 'not a key at all, and secret-looking\n');
    const notKey = configError({ clientKeyFile: garbage });
    expect(notKey.message).toBe(`clientKeyFile ${garbage}: not a readable PEM private key`);
    for (const e of [mismatch, notKey]) {
      expect(e.message).not.toMatch(/BEGIN|secret-looking/);
      expect(e.details.join(' ')).not.toMatch(/BEGIN|secret-looking/);
    }
    expect(configError({ caFile: pki.caKey }).message).toBe(`caFile ${pki.caKey}: not a PEM certificate`);
  });

  it('a URL that is not https', () => {
    expect(configError({ mcpUrl: `http://127.0.0.1:${mcp.port}` }).message).toBe(`mcpUrl http://127.0.0.1:${mcp.port} must be https`);
    expect(configError({ mcpUrl: 'mcp.local' }).code).toBe('mcp_config');
  });
});

describe('generated PKI', () => {
  it('keeps private keys at mode 0600', async () => {
    const { statSync } = await import('node:fs');
    for (const k of [pki.caKey, pki.serverKey, pki.clientKey, pki.rogueServerKey, pki.rogueClientKey]) {
      expect(statSync(k).mode & 0o777).toBe(0o600);
    }
  });
});

describe('system trust is never consulted', () => {
  it("a CA added to Node's default store (NODE_EXTRA_CA_CERTS) does not make the agent trust the MCP", async () => {
    const { execa } = await import('execa');
    const child = await execa('npx', ['tsx', join(import.meta.dirname, 'pinned-ca-child.ts'), mcp.url, pki.rogueCaCert, pki.clientCert, pki.clientKey], {
      env: { NODE_EXTRA_CA_CERTS: pki.caCert },
    });
    const out = JSON.parse(child.stdout) as { control: unknown; pinned: { ok: boolean; error?: { code: string; message: string } } };
    expect(out.control).toBe(204);
    expect(out.pinned.ok).toBe(false);
    expect(out.pinned.error?.code).toBe('tls');
    expect(out.pinned.error?.message).toContain(`not signed by the CA in ${pki.rogueCaCert}`);
  });
});
