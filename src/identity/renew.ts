import { X509Certificate } from 'node:crypto';
import { AgentError, oneLine, writeFileAtomic } from '../common/index.js';
import type { Config } from '../config/index.js';
import { identityExchange, type IdentityResponse } from '../mcp/index.js';
import { exists, identityPaths, readText, removeDurable, renameDurable, type IdentityPaths } from './files.js';
import { CertificateResponseSchema, RefusalSchema } from './protocol.js';
import { certInfo, checkIssuedCertificate, parseCertificate, type CertInfo } from './cert-info.js';

const DAY_MS = 86_400_000;

export interface CurrentIdentity {
  readonly certPem: string;
  readonly keyPem: string;
  readonly cert: X509Certificate;
  readonly info: CertInfo;
}

export function readCurrentIdentity(paths: IdentityPaths): CurrentIdentity {
  const certPem = readText(paths.cert);
  const cert = parseCertificate(certPem, `clientCertFile ${paths.cert}`);
  return { certPem, keyPem: readText(paths.tlsKey), cert, info: certInfo(cert) };
}

/** When renewal starts: renewBeforeDays before expiry, or half the lifetime for a short-lived certificate. */
export function renewalDueAt(info: CertInfo, renewBeforeDays: number): number {
  const lifetime = info.notAfter - info.notBefore;
  return info.notAfter - Math.min(renewBeforeDays * DAY_MS, lifetime / 2);
}

/**
 * Finish or discard a renewal a crash interrupted. The commit file is written only after the new
 * pair worked against the MCP: with it, the pending files replace the current ones (each rename
 * is atomic and redoing it is harmless); without it, the pending files are dropped and the current
 * pair, which was never touched, stays.
 */
export function settleRenewal(paths: IdentityPaths): 'completed' | 'discarded' | 'none' {
  if (exists(paths.renewalCommit)) {
    if (exists(paths.tlsKeyPending)) renameDurable(paths.tlsKeyPending, paths.tlsKey);
    if (exists(paths.certPending)) renameDurable(paths.certPending, paths.cert);
    removeDurable(paths.renewalCommit);
    return 'completed';
  }
  if (exists(paths.tlsKeyPending) || exists(paths.certPending)) {
    removeDurable(paths.certPending);
    removeDurable(paths.tlsKeyPending);
    return 'discarded';
  }
  return 'none';
}

export type RenewalResult =
  | { readonly kind: 'renewed'; readonly previous: CertInfo; readonly current: CertInfo; readonly serverDate: number | null }
  // No server date from a failure: a refusal may come from a proxy in front of the MCP, with its own clock.
  | { readonly kind: 'failed'; readonly message: string; readonly status: number | null; readonly code: string | null; readonly serverDate: null };

/**
 * Renew the mTLS certificate over the current identity: a new key made here, its CSR sent to
 * POST /renew, the certificate checked, then tried (GET /identity over the NEW pair) before it
 * replaces the old one. Until that probe answers, the old pair stays in use.
 */
export async function renewCertificate(config: Config): Promise<RenewalResult> {
  const paths = identityPaths(config);
  settleRenewal(paths);
  const current = readCurrentIdentity(paths);
  const caPem = Buffer.from(readText(config.caFile));
  const ca = parseCertificate(caPem, `caFile ${config.caFile}`);
  const x509 = await import('./x509.js');
  const keyPem = await x509.newTlsKeyPem();
  writeFileAtomic(paths.tlsKeyPending, keyPem, 0o600);
  const res = await identityExchange({
    mcpUrl: config.mcpUrl,
    ca: caPem,
    caFile: config.caFile,
    client: { cert: Buffer.from(current.certPem), key: Buffer.from(current.keyPem), certFile: paths.cert, notAfter: new Date(current.info.notAfter) },
    method: 'POST',
    path: '/renew',
    body: { site_id: config.siteId, host_id: config.hostId, csr: await x509.csrPem(keyPem, config.hostId) },
  });
  const failed = (message: string, r: IdentityResponse): RenewalResult => {
    settleRenewal(paths);
    return r.ok
      ? { kind: 'failed', message, status: r.status, code: RefusalSchema.safeParse(r.json).data?.code ?? null, serverDate: null }
      : { kind: 'failed', message, status: null, code: r.error.code, serverDate: null };
  };
  if (!res.ok) return failed(`renewal request failed: ${res.error.message}`, res);
  if (res.status !== 200 && res.status !== 201) {
    const refusal = RefusalSchema.safeParse(res.json);
    return failed(`MCP refused the renewal (HTTP ${res.status}): ${refusal.success ? oneLine(refusal.data.error, 200) : res.text}`, res);
  }
  const body = CertificateResponseSchema.safeParse(res.json);
  if (!body.success) return failed('MCP answered the renewal without a PEM certificate', res);
  let next: X509Certificate;
  try {
    next = checkIssuedCertificate(body.data.certificate, ca, keyPem, config.hostId);
  } catch (e) {
    return failed(e instanceof AgentError ? e.message : String(e), res);
  }
  writeFileAtomic(paths.certPending, body.data.certificate, 0o644);
  const probe = await identityExchange({
    mcpUrl: config.mcpUrl,
    ca: caPem,
    caFile: config.caFile,
    client: { cert: Buffer.from(body.data.certificate), key: Buffer.from(keyPem), certFile: paths.certPending, notAfter: new Date(next.validTo) },
    method: 'GET',
    path: '/identity',
  });
  const nextInfo = certInfo(next);
  if (!probe.ok) return failed(`the renewed certificate did not work, keeping the current one: ${probe.error.message}`, probe);
  if (probe.status !== 200 || (probe.json as { serial?: unknown } | null)?.serial !== nextInfo.serial) {
    return failed(`the renewed certificate did not work, keeping the current one: GET /identity answered ${probe.status}`, probe);
  }
  writeFileAtomic(paths.renewalCommit, `${nextInfo.serial}\n`, 0o600);
  settleRenewal(paths);
  return { kind: 'renewed', previous: current.info, current: nextInfo, serverDate: res.serverDate };
}
