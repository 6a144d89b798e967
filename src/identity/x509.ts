// @peculiar/x509 resolves its services through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { AgentError } from '../common/index.js';

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
  return { privateKey, publicKey } as CryptoKeyPair;
}

/** A PKCS#10 request for CN=hostId, signed by the key (proof of possession). */
export async function csrPem(keyPem: string, hostId: string): Promise<string> {
  const keys = await importKeyPair(keyPem);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: [{ CN: [hostId] }], keys, signingAlgorithm: P256 });
  return csr.toString('pem');
}

/** The SPKI of a private or public key, for comparing a certificate with the key it must carry. */
export function spkiOf(key: string | X509Certificate): Buffer {
  const pub = typeof key === 'string' ? createPublicKey(key) : key.publicKey;
  return pub.export({ format: 'der', type: 'spki' });
}

export function commonName(cert: X509Certificate): string | null {
  return /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? null;
}

export interface CertInfo {
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly subject: string;
}

export function certInfo(cert: X509Certificate): CertInfo {
  return { serial: cert.serialNumber.toLowerCase(), notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo), subject: cert.subject };
}

export function parseCertificate(pem: string | Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new AgentError('identity_cert', `${what}: not a PEM certificate`);
  }
}

/**
 * What a returned certificate must be before it is stored: issued by the pinned CA (signature
 * checked), carrying exactly our key, for our host id, and for TLS clients.
 */
export function checkIssuedCertificate(pem: string, ca: X509Certificate, keyPem: string, hostId: string): X509Certificate {
  const cert = parseCertificate(pem, 'the certificate the MCP returned');
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new AgentError('identity_cert', 'the certificate the MCP returned is not signed by the CA in caFile');
  if (!spkiOf(cert).equals(spkiOf(keyPem))) throw new AgentError('identity_cert', 'the certificate the MCP returned is for another key than the one this appliance sent');
  if (commonName(cert) !== hostId) {
    throw new AgentError('identity_cert', `the certificate the MCP returned names ${JSON.stringify(cert.subject.replace(/\n/g, ', '))}, not CN=${hostId}`);
  }
  if (cert.keyUsage && !cert.keyUsage.includes('1.3.6.1.5.5.7.3.2')) throw new AgentError('identity_cert', 'the certificate the MCP returned is not for TLS clients (extendedKeyUsage)');
  return cert;
}
