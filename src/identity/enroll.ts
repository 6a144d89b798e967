import { createSecureContext } from 'node:tls';
import { AGENT_VERSION, AgentError, oneLine, writeFileAtomic, errnoCode } from '../common/index.js';
import type { Config } from '../config/index.js';
import { formatPublicKey, loadSecretKeyFile, type SecretKey } from '../crypto/index.js';
import { identityExchange, type McpFailure } from '../mcp/index.js';
import { newEvidenceKey, writeEvidenceKey } from './evidence-key.js';
import { ensureDirs, exists, identityPaths, readText, removeDurable, type IdentityPaths } from './files.js';
import { machineIdentifier } from './machine-id.js';
import { CertificateResponseSchema, RefusalSchema, keyFingerprint, type EnrollRequest } from './protocol.js';
import { certInfo, checkIssuedCertificate, parseCertificate } from './cert-info.js';

/** What the appliance enrolled, kept beside the certificate; the agent's first bundle records it. */
export interface EnrollmentRecord {
  readonly site_id: string;
  readonly host_id: string;
  readonly machine_id: string;
  readonly evidence_key: string;
  readonly evidence_key_fingerprint: string;
  readonly certificate_serial: string;
  readonly certificate_not_before: string;
  readonly certificate_not_after: string;
  readonly mcp_url: string;
  readonly enrolled_at: string;
  readonly agent_version: string;
}

export interface EnrollOptions {
  readonly config: Config;
  readonly tokenFile: string;
  /** Defaults to config.caFile (the enrollment unit gets its own credential copy). */
  readonly caFile?: string;
  /** false: leave the token file to the caller (default true: delete it once used). */
  readonly removeToken?: boolean;
  readonly now?: () => number;
}

export type EnrollOutcome =
  | { readonly kind: 'already_enrolled'; readonly serial: string; readonly notAfter: string; readonly tokenRemoved: TokenRemoval }
  | { readonly kind: 'enrolled'; readonly record: EnrollmentRecord; readonly tokenRemoved: TokenRemoval };

/** true, or why the token file was not deleted: absent, kept (the caller deletes it), or a failure (the error code). */
export type TokenRemoval = true | 'absent' | 'kept' | { readonly failed: string };

/**
 * Enroll this appliance: make both private keys here (they never leave), send the CSR and the
 * evidence public key with the one-time token, store the certificate the MCP's CA issued.
 *
 * Crash-safe by order of writes: evidence key, TLS key, (request), enrollment record, certificate,
 * token removal. A rerun after a kill at any point reuses the keys on disk; the MCP answers a
 * token replayed with the same keys by re-sending the same certificate, so a lost response costs
 * nothing. A refused token removes the keys again: no partial identity stays behind.
 */
export async function enroll(opts: EnrollOptions): Promise<EnrollOutcome> {
  const { config } = opts;
  const now = opts.now ?? Date.now;
  const paths = identityPaths(config);
  if (exists(paths.cert)) {
    const current = enrolledIdentity(paths);
    return { kind: 'already_enrolled', ...current, tokenRemoved: removeToken(opts) };
  }
  const token = readToken(opts.tokenFile);
  const caFile = opts.caFile ?? config.caFile;
  const caPem = readFileOr(caFile, 'caFile');
  const ca = parseCertificate(caPem, `caFile ${caFile}`);
  const machineId = machineIdentifier(config.machineIdFile, config.siteId);

  ensureDirs([paths.signingKey, paths.tlsKey, paths.cert]);
  const x509 = await import('./x509.js');
  const created: string[] = [];
  let evidenceKey: SecretKey;
  if (exists(paths.signingKey)) {
    evidenceKey = loadSecretKeyFile(paths.signingKey);
  } else {
    evidenceKey = newEvidenceKey(config.hostId, now());
    writeEvidenceKey(paths.signingKey, evidenceKey);
    created.push(paths.signingKey);
  }
  let tlsKey: string;
  if (exists(paths.tlsKey)) {
    tlsKey = readText(paths.tlsKey);
  } else {
    tlsKey = await x509.newTlsKeyPem();
    writeFileAtomic(paths.tlsKey, tlsKey, 0o600);
    created.push(paths.tlsKey);
  }

  const request: EnrollRequest = {
    token,
    site_id: config.siteId,
    host_id: config.hostId,
    machine_id: machineId,
    agent_version: AGENT_VERSION,
    csr: await x509.csrPem(tlsKey, config.hostId),
    evidence_public_key: formatPublicKey(evidenceKey.keyId, evidenceKey.publicKey),
  };
  const res = await identityExchange({ mcpUrl: config.mcpUrl, ca: Buffer.from(caPem), caFile, method: 'POST', path: '/enroll', body: request });
  if (!res.ok) {
    // Never sent (TLS to an unverified server, DNS, refused): undo what this run made. Maybe
    // received (reset, timeout): keep the keys, a rerun replays the token with them.
    if (NOT_SENT.has(res.error.code)) removeAll(created);
    throw new AgentError('enroll_transport', `enrollment failed, nothing enrolled: ${res.error.message}`);
  }
  if (res.status !== 200 && res.status !== 201) {
    if (res.status >= 400 && res.status < 500) {
      // A verdict on the token: these keys are bound to nothing at the MCP.
      removeAll([paths.signingKey, paths.tlsKey]);
      throw new AgentError('enroll_refused', `enrollment refused by the MCP (HTTP ${res.status}): ${refusalText(res.json, res.text)}; nothing was enrolled`);
    }
    throw new AgentError('enroll_server', `enrollment failed at the MCP (HTTP ${res.status}): ${refusalText(res.json, res.text)}; rerun to retry with the same keys`);
  }
  const body = CertificateResponseSchema.safeParse(res.json);
  if (!body.success) throw new AgentError('enroll_response', 'the MCP answered the enrollment without a PEM certificate; rerun to retry with the same keys');
  const cert = checkIssuedCertificate(body.data.certificate, ca, tlsKey, config.hostId);
  const info = certInfo(cert);
  const record: EnrollmentRecord = {
    site_id: config.siteId,
    host_id: config.hostId,
    machine_id: machineId,
    evidence_key: request.evidence_public_key,
    evidence_key_fingerprint: keyFingerprint(evidenceKey.publicKey),
    certificate_serial: info.serial,
    certificate_not_before: new Date(info.notBefore).toISOString(),
    certificate_not_after: new Date(info.notAfter).toISOString(),
    mcp_url: config.mcpUrl,
    enrolled_at: new Date(now()).toISOString(),
    agent_version: AGENT_VERSION,
  };
  writeFileAtomic(paths.record, JSON.stringify(record, null, 2) + '\n', 0o644);
  // The certificate last: its presence is what "enrolled" means.
  writeFileAtomic(paths.cert, body.data.certificate, 0o644);
  return { kind: 'enrolled', record, tokenRemoved: removeToken(opts) };
}

const NOT_SENT = new Set<McpFailure['code']>(['tls', 'dns', 'refused']);

function enrolledIdentity(paths: IdentityPaths): { serial: string; notAfter: string } {
  const certPem = readText(paths.cert);
  const cert = parseCertificate(certPem, `clientCertFile ${paths.cert}`);
  try {
    createSecureContext({ cert: certPem, key: readText(paths.tlsKey) });
  } catch {
    throw new AgentError('identity_inconsistent', `clientKeyFile ${paths.tlsKey} does not belong to clientCertFile ${paths.cert}`);
  }
  const info = certInfo(cert);
  return { serial: info.serial, notAfter: new Date(info.notAfter).toISOString() };
}

function readToken(path: string): string {
  let text: string;
  try {
    text = readText(path);
  } catch (e) {
    const code = errnoCode(e, 'error');
    throw new AgentError(
      'enroll_token',
      code === 'ENOENT' ? `no enrollment token at ${path} (already used, or not put in place)` : `enrollment token ${path}: cannot read (${code})`,
    );
  }
  const token = text.trim();
  if (!/^[\x21-\x7e]{16,512}$/.test(token)) throw new AgentError('enroll_token', `enrollment token ${path}: not a token (16-512 printable characters, one line)`);
  return token;
}

function readFileOr(path: string, option: string): string {
  try {
    return readText(path);
  } catch (e) {
    throw new AgentError('mcp_config', `${option} ${path}: cannot read (${errnoCode(e, 'error')})`);
  }
}

function refusalText(json: unknown, text: string): string {
  const r = RefusalSchema.safeParse(json);
  return r.success ? `${oneLine(r.data.error, 200)}${r.data.code ? ` (${r.data.code})` : ''}` : text || '(no body)';
}

function removeAll(files: readonly string[]): void {
  for (const f of files) removeDurable(f);
}

function removeToken(opts: EnrollOptions): TokenRemoval {
  if (opts.removeToken === false) return 'kept';
  const path = opts.tokenFile;
  if (!exists(path)) return 'absent';
  try {
    removeDurable(path);
    return exists(path) ? { failed: 'still present' } : true;
  } catch (e) {
    return { failed: errnoCode(e, 'error') };
  }
}
