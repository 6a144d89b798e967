import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { parsePublicKey, type PublicKey } from '../../src/crypto/index.js';
import { EnrollRequestSchema, RenewRequestSchema, tokenHash } from '../../src/identity/index.js';
import { readJsonBody } from './request-body.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

export interface EnrollmentOptions {
  /** Lifetime of an issued client certificate. Default 90 days. */
  readonly certLifetimeMs?: number;
  /** The MCP's clock (tests move it to expire tokens). Default Date.now. */
  readonly now?: () => number;
}

interface TokenRecord {
  readonly siteId: string;
  readonly expiresAt: number;
  /** Set on first use: the keys it was used with and the certificate they got. */
  used: { readonly binding: string; readonly certificate: string } | null;
}

interface IssuedCert {
  readonly serial: string;
  readonly siteId: string;
  readonly hostId: string;
  readonly notAfter: number;
}

type Send = (res: ServerResponse, status: number, body: unknown) => void;

/**
 * The MCP's enrollment authority: one-time site tokens (only their SHA-256 is kept, with the site
 * and the expiry), a CA that signs appliance CSRs (the PKI's CA key, through @peculiar/x509), the
 * evidence key learned at enrollment registered with the evidence intake, renewal over the current
 * mTLS identity, revocation. Refusals carry the codes of src/identity/protocol.ts.
 */
export class EnrollmentAuthority {
  private readonly tokens = new Map<string, TokenRecord>();
  private readonly issued = new Map<string, IssuedCert>();
  private readonly revokedHosts = new Set<string>();
  readonly enrolled: { siteId: string; hostId: string; machineId: string; evidenceKey: string; serial: string; agentVersion: string }[] = [];
  private readonly now: () => number;
  private readonly lifetimeMs: number;

  private constructor(
    private readonly caCert: x509.X509Certificate,
    private readonly caKey: CryptoKey,
    private readonly onEvidenceKey: (k: PublicKey) => void,
    opts: EnrollmentOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.lifetimeMs = opts.certLifetimeMs ?? 90 * DAY_MS;
  }

  static async create(caCertFile: string, caKeyFile: string, onEvidenceKey: (k: PublicKey) => void, opts: EnrollmentOptions = {}): Promise<EnrollmentAuthority> {
    const [certPem, keyPem] = await Promise.all([readFile(caCertFile, 'utf8'), readFile(caKeyFile, 'utf8')]);
    const pkcs8 = createPrivateKey(keyPem).export({ format: 'der', type: 'pkcs8' });
    const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, P256, false, ['sign']);
    return new EnrollmentAuthority(new x509.X509Certificate(certPem), key, onEvidenceKey, opts);
  }

  /** A new one-time token for a site; the MSP hands it to the appliance, the MCP keeps its hash. */
  issueToken(siteId: string, ttlMs = DAY_MS): string {
    const token = `cae_${randomBytes(32).toString('base64url')}`;
    this.tokens.set(tokenHash(token), { siteId, expiresAt: this.now() + ttlMs, used: null });
    return token;
  }

  /** Withdraw an unused (or used) token: it is unknown from now on. */
  revokeToken(token: string): boolean {
    return this.tokens.delete(tokenHash(token));
  }

  /** Revoke an appliance: every request over any of its certificates gets 403 identity_revoked. */
  revokeHost(siteId: string, hostId: string): void {
    this.revokedHosts.add(`${siteId}/${hostId}`);
  }

  /**
   * Routes of the identity lifecycle, and the client-certificate gate of every other route.
   * Returns true when it answered.
   */
  async handle(req: IncomingMessage, res: ServerResponse, route: string, sendJson: Send): Promise<boolean> {
    const send: Send = (r, status, body) => {
      r.setHeader('date', new Date(this.now()).toUTCString());
      sendJson(r, status, body);
    };
    if (route === 'POST /enroll') {
      await this.enroll(req, res, send);
      return true;
    }
    const peer = this.peer(req);
    if (!peer.ok) {
      send(res, peer.status, { error: peer.error, code: peer.code });
      return true;
    }
    if (route === 'POST /renew') {
      await this.renew(req, res, peer.cert, send);
      return true;
    }
    if (route === 'GET /identity') {
      send(res, 200, { serial: peer.cert.serial, host_id: peer.cert.hostId, site_id: peer.cert.siteId, not_after: new Date(peer.cert.notAfter).toISOString() });
      return true;
    }
    return false;
  }

  private peer(req: IncomingMessage): { ok: true; cert: IssuedCert } | { ok: false; status: 401 | 403; code: string; error: string } {
    const socket = req.socket as TLSSocket;
    const raw = socket.getPeerCertificate();
    if (!raw || !raw.raw) return { ok: false, status: 401, code: 'certificate_required', error: 'a client certificate is required (enroll first)' };
    const serial = raw.serialNumber.toLowerCase();
    if (!socket.authorized) {
      const why = String(socket.authorizationError ?? '');
      // Validity is judged on the MCP's own clock (tests move it), the chain by OpenSSL.
      if (why !== 'CERT_HAS_EXPIRED' && why !== 'CERT_NOT_YET_VALID') {
        return { ok: false, status: 401, code: 'certificate_untrusted', error: `the client certificate is not accepted (${why})` };
      }
    }
    const now = this.now();
    if (now > Date.parse(raw.valid_to)) return { ok: false, status: 401, code: 'certificate_expired', error: 'the client certificate has expired' };
    if (now < Date.parse(raw.valid_from)) return { ok: false, status: 401, code: 'certificate_untrusted', error: 'the client certificate is not valid yet' };
    const known = this.issued.get(serial);
    // Certificates the PKI made by hand (before enrollment existed) stay accepted as they are.
    const cert = known ?? { serial, siteId: '', hostId: /CN=([^\n,]*)/.exec(new X509Certificate(raw.raw).subject)?.[1] ?? '', notAfter: Date.parse(raw.valid_to) };
    if ([...this.revokedHosts].some((h) => h === `${cert.siteId}/${cert.hostId}` || (cert.siteId === '' && h.endsWith(`/${cert.hostId}`)))) {
      return { ok: false, status: 403, code: 'identity_revoked', error: 'this appliance identity has been revoked by the MSP' };
    }
    return { ok: true, cert };
  }

  private async enroll(req: IncomingMessage, res: ServerResponse, send: Send): Promise<void> {
    const body = await readJsonBody(req, 64 * 1024);
    if (!body.ok) return send(res, body.status, { error: body.error });
    const parsed = EnrollRequestSchema.safeParse(body.json);
    if (!parsed.success) return send(res, 400, { error: `bad enrollment request: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}` });
    const r = parsed.data;
    const record = this.tokens.get(tokenHash(r.token));
    if (!record) return send(res, 401, { error: 'unknown enrollment token', code: 'token_unknown' });
    if (record.siteId !== r.site_id) return send(res, 403, { error: `the token was issued for another site than ${r.site_id}`, code: 'token_wrong_site' });
    const csr = new x509.Pkcs10CertificateRequest(r.csr);
    if (!(await csr.verify())) return send(res, 400, { error: 'the CSR signature does not verify' });
    const binding = `${Buffer.from(csr.publicKey.rawData).toString('base64')}|${r.evidence_public_key}|${r.host_id}`;
    if (record.used) {
      // The same keys asking again (their first answer was lost): the same certificate, nothing new.
      if (record.used.binding === binding) return send(res, 200, { certificate: record.used.certificate });
      return send(res, 401, { error: 'the enrollment token was already used', code: 'token_used' });
    }
    if (this.now() > record.expiresAt) return send(res, 401, { error: `the enrollment token expired at ${new Date(record.expiresAt).toISOString()}`, code: 'token_expired' });
    const certificate = await this.sign(csr, r.site_id, r.host_id);
    record.used = { binding, certificate };
    const evidenceKey = parsePublicKey(r.evidence_public_key, 'evidence_public_key');
    this.onEvidenceKey(evidenceKey);
    this.enrolled.push({
      siteId: r.site_id,
      hostId: r.host_id,
      machineId: r.machine_id,
      evidenceKey: r.evidence_public_key,
      serial: new X509Certificate(certificate).serialNumber.toLowerCase(),
      agentVersion: r.agent_version,
    });
    send(res, 201, { certificate });
  }

  private async renew(req: IncomingMessage, res: ServerResponse, peer: IssuedCert, send: Send): Promise<void> {
    const body = await readJsonBody(req, 64 * 1024);
    if (!body.ok) return send(res, body.status, { error: body.error });
    const parsed = RenewRequestSchema.safeParse(body.json);
    if (!parsed.success) return send(res, 400, { error: 'bad renewal request' });
    if (parsed.data.host_id !== peer.hostId) return send(res, 403, { error: `this certificate is for ${peer.hostId}, not ${parsed.data.host_id}` });
    const csr = new x509.Pkcs10CertificateRequest(parsed.data.csr);
    if (!(await csr.verify())) return send(res, 400, { error: 'the CSR signature does not verify' });
    send(res, 201, { certificate: await this.sign(csr, peer.siteId || parsed.data.site_id, peer.hostId) });
  }

  private async sign(csr: x509.Pkcs10CertificateRequest, siteId: string, hostId: string): Promise<string> {
    const serial = `01${randomBytes(15).toString('hex')}`;
    const now = this.now();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: [{ CN: [hostId] }],
      issuer: this.caCert.subject,
      // Back-dated a little: an appliance clock a few minutes behind still accepts it.
      notBefore: new Date(now - 5 * 60_000),
      notAfter: new Date(now + this.lifetimeMs),
      publicKey: csr.publicKey,
      signingKey: this.caKey,
      signingAlgorithm: P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        await x509.AuthorityKeyIdentifierExtension.create(this.caCert),
      ],
    });
    this.issued.set(serial, { serial, siteId, hostId, notAfter: now + this.lifetimeMs });
    return cert.toString('pem') + '\n';
  }
}
