import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EvidenceStore } from '../../testing/index.js';
import { decodeBase64Strict, verifyEnvelope, ORDER_PAYLOAD_TYPE, type Envelope } from '../../src/crypto/index.js';
import { verifyPath } from '../../src/evidence/index.js';
import { checkOrder } from '../../src/orders/index.js';
import { decodeQueuedBundle } from '../../src/outputs/index.js';
import { evidenceEnvelope } from '../mcp/fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { context, makeKey, orderPayload, signPayload } from '../orders/fixtures.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * Another spelling of the same bytes: the last data character with one of its unused low bits set
 * (`...HAQ==` becomes `...HAR==`). Node's lenient decoder maps both to the same bytes.
 */
function respell(b64: string): string {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  if (pad === 0) throw new Error('a string without padding has no unused bits');
  const i = b64.length - pad - 1;
  const v = ALPHABET.indexOf(b64[i]!);
  return `${b64.slice(0, i)}${ALPHABET[v ^ 1]}${b64.slice(i + 1)}`;
}

const tmp = tempDir('ca-b64-');
afterAll(() => tmp.cleanup());
const msp = makeKey('msp-2026');
const agent = makeKey('appliance-1');

/** An envelope whose payload length leaves padding, so both payload and sig can be respelled. */
function paddedOrder(): Envelope {
  for (let i = 0; ; i++) {
    const env = signPayload(orderPayload({ params: { checks: ['services'] }, type: 'heal', policy_version: `1.${i}` }), msp.secret);
    if (env.payload.endsWith('=')) return env;
  }
}

describe('DSSE envelopes decode base64 strictly', () => {
  it('the premise: the respelled signature decodes to the same bytes under Node', () => {
    const env = paddedOrder();
    const sig = env.signatures[0]!.sig;
    expect(respell(sig)).not.toBe(sig);
    expect(Buffer.from(respell(sig), 'base64').equals(Buffer.from(sig, 'base64'))).toBe(true);
    expect(decodeBase64Strict(sig)).not.toBeNull();
    expect(decodeBase64Strict(respell(sig))).toBeNull();
    expect(decodeBase64Strict('QQ')).toBeNull();
    expect(decodeBase64Strict('QQ==')).toEqual(Buffer.from('A'));
    expect(decodeBase64Strict('')).toEqual(Buffer.alloc(0));
  });

  it('an order with a respelled signature or payload is rejected as bad_envelope, the intact one accepted', () => {
    const env = paddedOrder();
    expect(checkOrder(env, context([msp.pub])).decision).toBe('accepted');
    const sigVariant = { ...env, signatures: [{ ...env.signatures[0]!, sig: respell(env.signatures[0]!.sig) }] };
    const payloadVariant = { ...env, payload: respell(env.payload) };
    for (const variant of [sigVariant, payloadVariant]) {
      const d = checkOrder(variant, context([msp.pub]));
      expect(d.decision).toBe('rejected');
      expect(d.decision === 'rejected' && d.reason).toBe('bad_envelope');
      expect(verifyEnvelope(variant, ORDER_PAYLOAD_TYPE, [msp.pub]).ok).toBe(false);
    }
  });

  it('verify names a respelled evidence envelope as bad_envelope', () => {
    const dir = join(tmp.path, 'evidence');
    mkdirSync(dir);
    const env = evidenceEnvelope(agent.secret, 1);
    writeFileSync(join(dir, '0000000001-a.json'), JSON.stringify({ ...env, signatures: [{ ...env.signatures[0]!, sig: respell(env.signatures[0]!.sig) }] }));
    const report = verifyPath(dir, [agent.pub]);
    expect(report.ok).toBe(false);
    expect(report.findings.map((f) => f.kind)).toEqual(['bad_envelope']);
  });

  it('the reference MCP refuses a respelled evidence envelope and the outbox reader does not take it for a bundle', () => {
    const store = new EvidenceStore();
    store.registerKey(agent.pub);
    const env = evidenceEnvelope(agent.secret, 1);
    const variant = { ...env, signatures: [{ ...env.signatures[0]!, sig: respell(env.signatures[0]!.sig) }] };
    expect(store.accept(variant, Date.now())).toMatchObject({ ok: false, status: 400 });
    expect(store.accept(env, Date.now())).toMatchObject({ ok: true });
    expect(decodeQueuedBundle(JSON.stringify(variant)).ok).toBe(false);
    expect(decodeQueuedBundle(JSON.stringify(env)).ok).toBe(true);
  });
});
