import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { ORDER_PAYLOAD_TYPE, formatPublicKey, signEnvelope } from '../../src/crypto/index.js';
import { loadPki } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';
import { agentKey, clientFor, evidenceEnvelope } from './fixtures.js';

const tmp = tempDir('mcp-standalone-');
afterAll(() => tmp.cleanup());

describe('reference MCP as a standalone process', () => {
  it('makes its PKI, prints its URL, serves the given order and agent key, and sums up on SIGTERM', async () => {
    const key = agentKey('appliance-1');
    const order = signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from('{"type":"run_checks"}'), agentKey('msp').secret);
    const orderFile = join(tmp.path, 'order.json');
    writeFileSync(orderFile, JSON.stringify(order));
    const pkiDir = join(tmp.path, 'pki');
    const script = join(import.meta.dirname, '..', '..', 'testing', 'reference-mcp', 'server.ts');
    const child = execa(process.execPath, ['--import', 'tsx', script, '--pki', pkiDir, '--agent-key', formatPublicKey('appliance-1', key.pub.publicKey), '--order', orderFile]);
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    try {
      const url = (await lines.next()).value as string;
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const pki = await loadPki(pkiDir);
      expect(pki).not.toBeNull();
      const c = clientFor(pki!, url);
      expect(await c.nextOrder()).toEqual({ ok: true, envelope: order });
      const env = evidenceEnvelope(key.secret, 1);
      expect((await c.postEvidence(env)).kind).toBe('ok');
      expect((await c.postEvidence(env)).kind).toBe('ok');
      expect((await c.postEvidence(evidenceEnvelope(agentKey('other').secret, 1))).kind).toBe('reject');
      await c.close();
      child.kill('SIGTERM');
      expect((await lines.next()).value).toBe('evidence: 1 unique, 1 duplicates, 1 rejected; orders served: 1');
      expect((await child).exitCode).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await child.catch(() => undefined);
    }
  });

  it('exits 2 with usage on an unknown option', async () => {
    const script = join(import.meta.dirname, '..', '..', 'testing', 'reference-mcp', 'server.ts');
    const r = await execa(process.execPath, ['--import', 'tsx', script, '--pki-dir', 'x'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--pki-dir'[\s\S]*\nusage: /);
  });

  it('without --pki keeps its PKI under XDG_STATE_HOME, outside the repository, with CN = --host-id', async () => {
    const state = join(tmp.path, 'xdg-state');
    const script = join(import.meta.dirname, '..', '..', 'testing', 'reference-mcp', 'server.ts');
    const child = execa(process.execPath, ['--import', 'tsx', script, '--host-id', 'front-desk-1'], { env: { XDG_STATE_HOME: state } });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    try {
      expect((await lines.next()).value).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const pki = await loadPki(join(state, 'compliance-agent-reference-mcp', 'pki'));
      expect(pki).not.toBeNull();
      const subject = await execa('openssl', ['x509', '-in', pki!.clientCert, '-noout', '-subject', '-nameopt', 'RFC2253']);
      expect(subject.stdout).toBe('subject=CN=front-desk-1');
    } finally {
      child.kill('SIGTERM');
      await child.catch(() => undefined);
    }
  });
});
