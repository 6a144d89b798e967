import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { AgentError, errnoCode } from '../common/index.js';

export interface TlsMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** When the client certificate expires, to explain a server's refusal. */
  readonly clientCertNotAfter: Date;
}

function read(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new AgentError('mcp_config', `${option} ${path}: cannot read (${errnoCode(e, 'error')})`);
  }
}

function certificate(option: string, path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new AgentError('mcp_config', `${option} ${path}: not a PEM certificate`);
  }
}

/**
 * Reads and checks the mTLS files up front so a bad path or a mismatched pair is one config error
 * naming the file, instead of a handshake failure later. Messages name paths, never contents.
 */
export function loadTlsMaterial(files: { caFile: string; clientCertFile: string; clientKeyFile: string }): TlsMaterial {
  const ca = read('caFile', files.caFile);
  const cert = read('clientCertFile', files.clientCertFile);
  const key = read('clientKeyFile', files.clientKeyFile);
  certificate('caFile', files.caFile, ca);
  const clientCert = certificate('clientCertFile', files.clientCertFile, cert);
  try {
    createPrivateKey(key);
  } catch {
    throw new AgentError('mcp_config', `clientKeyFile ${files.clientKeyFile}: not a readable PEM private key`);
  }
  try {
    createSecureContext({ ca, cert, key });
  } catch {
    throw new AgentError('mcp_config', `clientKeyFile ${files.clientKeyFile} does not belong to clientCertFile ${files.clientCertFile}`);
  }
  return { ca, cert, key, clientCertNotAfter: new Date(clientCert.validTo) };
}
