// @peculiar/x509 resolves its services through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';

/**
 * Loaded only when a key or CSR is made (enrollment, renewal): the library and its polyfill are
 * kept out of the agent's start (bench/cold-start.ts).
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/**
 * The mTLS key is ECDSA P-256: what every TLS stack and the MCP's CA accept without a second
 * thought. The evidence key stays Ed25519; the two have different jobs and rotate separately.
 */
const P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A new P-256 key as PKCS#8 PEM; it is written to disk by the caller and never sent anywhere. */
export async function newTlsKeyPem(): Promise<string> {
  const keys = await webcrypto.subtle.generateKey(P256, true, ['sign', 'verify']);
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString();
}

async function importKeyPair(keyPem: string): Promise<CryptoKeyPair> {
  const priv = createPrivateKey(keyPem);
  const pkcs8 = priv.export({ format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  const [privateKey, publicKey] = await Promise.all([
    webcrypto.subtle.importKey('pkcs8', pkcs8, P256, false, ['sign']),
    webcrypto.subtle.importKey('spki', spki, P256, true, ['verify']),
  ]);
  return { privateKey, publicKey };
}

/** A PKCS#10 request for CN=hostId, signed by the key (proof of possession). */
export async function csrPem(keyPem: string, hostId: string): Promise<string> {
  const keys = await importKeyPair(keyPem);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: [{ CN: [hostId] }], keys, signingAlgorithm: P256 });
  return csr.toString('pem');
}
