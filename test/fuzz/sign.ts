import { createPrivateKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import { ORDER_PAYLOAD_TYPE, pae, type Envelope, type SecretKey } from '../../src/crypto/index.js';

/**
 * Signs with node:crypto (OpenSSL), not the agent's @noble signer: the fuzzers produce thousands of
 * signed payloads, and an independent signer also proves the agent verifies what others sign.
 */
export function nodeSigner(key: SecretKey): (payload: Buffer, payloadType?: string) => Envelope {
  const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  const pk: KeyObject = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(key.seed), x: b64u(key.publicKey) }, format: 'jwk' });
  return (payload, payloadType = ORDER_PAYLOAD_TYPE) => ({
    payloadType,
    payload: payload.toString('base64'),
    signatures: [{ keyid: key.keyId, sig: nodeSign(null, pae(payloadType, payload), pk).toString('base64') }],
  });
}

/** One printable line of bounded length: what a reason must be to go into a log line or a bundle. */
export function isOneBoundedLine(text: unknown, max: number): boolean {
  return typeof text === 'string' && text.length > 0 && text.length <= max && !/[\u0000-\u001f\u007f]/.test(text);
}

/** A number of runs from the environment (FUZZ_RUNS) for longer local campaigns; 10,000 by default. */
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
