import { X509Certificate, createPublicKey } from 'node:crypto';
import { AgentError } from '../common/index.js';

/** The SPKI of a private or public key, for comparing a certificate with the key it must carry. */
function spkiOf(key: string | X509Certificate): Buffer {
  const pub = typeof key === 'string' ? createPublicKey(key) : key.publicKey;
  return pub.export({ format: 'der', type: 'spki' });
}

function commonName(cert: X509Certificate): string | null {
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
  if (cert.keyUsage && !cert.keyUsage.includes('1.3.6.1.5.5.7.3.2'))
    throw new AgentError('identity_cert', 'the certificate the MCP returned is not for TLS clients (extendedKeyUsage)');
  return cert;
}
