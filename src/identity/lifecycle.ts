import { readFileSync } from 'node:fs';
import type { Logger } from '../common/index.js';
import { describeError, isoSeconds } from '../common/index.js';
import type { Config } from '../config/index.js';
import type { SecretKey } from '../crypto/index.js';
import type { EvidenceSpec } from '../evidence/index.js';
import { getKv, setKv, type StateDb } from '../state/index.js';
import { exists, identityPaths, type IdentityPaths } from './files.js';
import { REFUSAL_CODES } from './protocol.js';
import { readCurrentIdentity, renewalDueAt, renewCertificate } from './renew.js';
import { pendingRotation, type PendingRotation } from './rotation.js';
import type { CertInfo } from './cert-info.js';
import type { EnrollmentRecord } from './enroll.js';

export type IdentityState = 'ok' | 'renewal_failed' | 'expired' | 'revoked' | 'clock_skew';

/** kv `identity_status`: what `status` shows. */
export interface IdentityStatus {
  readonly state: IdentityState;
  readonly message: string;
  readonly serial: string;
  readonly notAfter: string;
  readonly renewAt: string;
  readonly at: number;
}

/** The outcome of this cycle's poll, as far as the identity is concerned. */
export interface PollOutcome {
  readonly ok: boolean;
  readonly error?: { readonly code: string; readonly message: string; readonly status?: number };
}

export interface IdentityAssessment {
  /** Evidence first in the cycle: enrollment, renewal, and identity alerts. */
  readonly specs: readonly EvidenceSpec[];
  readonly rotation: PendingRotation | null;
  /** In the transaction that chains the specs. */
  record(): void;
}

const CONTROLS = ['HIPAA 164.312(d)', 'SOC 2 CC6.1'];
const RENEW_RETRY_MS = 3_600_000;
/** A server clock further off than this (beyond ntpMaxSkewMs) is the appliance's clock skew. */
const DATE_HEADER_SLACK_MS = 2_000;

/**
 * The appliance identity over its life, once per cycle: records the enrollment and every
 * renewal as evidence, renews the mTLS certificate before it expires (and makes the agent use the
 * new one), raises one alert bundle when the identity turns expired, revoked or skewed, and hands
 * the agent a staged evidence-key rotation.
 */
export class IdentityLifecycle {
  private readonly paths: IdentityPaths;

  constructor(
    private readonly config: Config,
    private readonly db: StateDb,
    private readonly deps: { readonly reloadMcp: () => Promise<void>; readonly logger: Logger },
  ) {
    this.paths = identityPaths(config);
  }

  async assess(poll: PollOutcome, now: number, signingKey: SecretKey, chainStarted: boolean): Promise<IdentityAssessment> {
    const specs: EvidenceSpec[] = [];
    let identity = readCurrentIdentity(this.paths).info;
    let serverDate: number | null = null;
    let renewalFailure: { message: string; code: string | null } | null = null;

    const revoked = poll.error?.status === 403;
    const refusedExpired = poll.error?.status === 401 && /expired/i.test(poll.error.message);
    const lastAttempt = Number(getKv(this.db, 'identity_renew_attempt_at') ?? '0');
    let attempted = false;
    if (!revoked && now < identity.notAfter && now >= renewalDueAt(identity, this.config.certRenewBeforeDays) && Math.abs(now - lastAttempt) >= RENEW_RETRY_MS) {
      attempted = true;
      // A renewal that cannot even be attempted (unreadable CA, full disk) is a failed renewal, not a failed cycle.
      const r = await renewCertificate(this.config).catch((e: unknown) => ({ kind: 'failed' as const, message: describeError(e), status: null, code: null, serverDate: null }));
      serverDate = r.serverDate;
      if (r.kind === 'renewed') {
        identity = r.current;
        await this.deps.reloadMcp();
        this.deps.logger.info({ serial: r.current.serial, notAfter: isoSeconds(r.current.notAfter) }, 'mTLS certificate renewed');
      } else {
        renewalFailure = { message: r.message, code: r.code };
        this.deps.logger.warn(`certificate renewal failed: ${r.message}`);
      }
    }

    const recorded = getKv(this.db, 'identity_serial');
    if (recorded !== identity.serial) specs.push(...this.identityEvidence(recorded, identity, now));

    const state = this.classify({ identity, poll, now, serverDate, revoked, refusedExpired, renewalFailure });
    const previous = getKv(this.db, 'identity_status');
    const previousState = previous ? (JSON.parse(previous) as IdentityStatus).state : 'ok';
    if (state.state !== previousState) {
      specs.push({
        check: 'identity',
        outcome: state.state === 'ok' ? 'compliant' : 'failed',
        startedAt: now,
        endedAt: now,
        controls: CONTROLS,
        preState: { state: previousState },
        postState: { state: state.state, certificate_serial: identity.serial, certificate_not_after: isoSeconds(identity.notAfter) },
        reason: state.state === 'ok' ? `identity valid again: ${state.message}` : `identity ${state.state.replace('_', ' ')}: ${state.message}`,
      });
    }
    const status: IdentityStatus = {
      ...state,
      serial: identity.serial,
      notAfter: isoSeconds(identity.notAfter),
      renewAt: isoSeconds(renewalDueAt(identity, this.config.certRenewBeforeDays)),
      at: now,
    };
    return {
      specs,
      rotation: chainStarted ? pendingRotation(this.paths, signingKey, now) : null,
      record: () => {
        setKv(this.db, 'identity_serial', identity.serial);
        setKv(this.db, 'identity_status', JSON.stringify(status));
        if (attempted) setKv(this.db, 'identity_renew_attempt_at', String(now));
      },
    };
  }

  /** Where the identity stands after this cycle's poll (and renewal): the worst finding wins. */
  private classify(c: {
    identity: CertInfo;
    poll: PollOutcome;
    now: number;
    serverDate: number | null;
    revoked: boolean;
    refusedExpired: boolean;
    renewalFailure: { message: string; code: string | null } | null;
  }): { state: IdentityState; message: string } {
    const { identity, now, renewalFailure } = c;
    if (c.revoked || renewalFailure?.code === REFUSAL_CODES.identity_revoked) {
      return { state: 'revoked', message: `the MCP refuses this appliance's identity (HTTP 403, revoked): ${c.poll.error?.message ?? renewalFailure?.message}` };
    }
    const skew = this.skew(identity, c.poll, now, c.serverDate);
    if (skew) return { state: 'clock_skew', message: skew };
    if (now >= identity.notAfter || c.refusedExpired || renewalFailure?.code === REFUSAL_CODES.certificate_expired) {
      return { state: 'expired', message: `the mTLS certificate ${identity.serial} expired ${isoSeconds(identity.notAfter)}; re-enroll with a new token` };
    }
    if (renewalFailure) {
      return { state: 'renewal_failed', message: `renewal due since ${isoSeconds(renewalDueAt(identity, this.config.certRenewBeforeDays))} failed: ${renewalFailure.message}` };
    }
    return { state: 'ok', message: `certificate ${identity.serial} valid until ${isoSeconds(identity.notAfter)}` };
  }

  /** The enrollment (first certificate of an enrolled appliance) or a renewal, as evidence. */
  private identityEvidence(previousSerial: string | null, cert: CertInfo, now: number): EvidenceSpec[] {
    const certState = { certificate_serial: cert.serial, certificate_not_before: isoSeconds(cert.notBefore), certificate_not_after: isoSeconds(cert.notAfter) };
    if (previousSerial === null) {
      const record = this.enrollmentRecord();
      // An appliance provisioned by hand (no enrollment record) has nothing to record here.
      if (!record || record.certificate_serial !== cert.serial) return [];
      return [
        {
          check: 'enrollment',
          outcome: 'compliant',
          startedAt: Date.parse(record.enrolled_at),
          endedAt: now,
          controls: CONTROLS,
          postState: {
            machine_id: record.machine_id,
            evidence_key: record.evidence_key,
            evidence_key_fingerprint: record.evidence_key_fingerprint,
            ...certState,
            mcp_url: record.mcp_url,
            enrolled_at: record.enrolled_at,
          },
          reason: `enrolled at ${record.mcp_url} with a one-time site token: keys made on the appliance, certificate ${cert.serial} until ${isoSeconds(cert.notAfter)}`,
        },
      ];
    }
    return [
      {
        check: 'identity_renewal',
        outcome: 'compliant',
        startedAt: now,
        endedAt: now,
        controls: CONTROLS,
        preState: { certificate_serial: previousSerial },
        postState: certState,
        reason: `mTLS certificate renewed over the current identity: ${previousSerial} -> ${cert.serial}, valid until ${isoSeconds(cert.notAfter)}`,
      },
    ];
  }

  private enrollmentRecord(): EnrollmentRecord | null {
    if (!exists(this.paths.record)) return null;
    try {
      return JSON.parse(readFileSync(this.paths.record, 'utf8')) as EnrollmentRecord;
    } catch (e) {
      this.deps.logger.warn(`${this.paths.record}: unreadable enrollment record (${describeError(e)})`);
      return null;
    }
  }

  /** Why the appliance clock is not to be trusted for this identity, or null. */
  private skew(cert: CertInfo, poll: PollOutcome, now: number, serverDate: number | null): string | null {
    if (now < cert.notBefore) return `the appliance clock (${isoSeconds(now)}) is before the certificate's start ${isoSeconds(cert.notBefore)}`;
    if (now >= cert.notAfter && poll.ok)
      return `the appliance clock (${isoSeconds(now)}) says certificate ${cert.serial} expired at ${isoSeconds(cert.notAfter)}, but the MCP accepted it`;
    if (serverDate !== null && Math.abs(serverDate - now) > this.config.ntpMaxSkewMs + DATE_HEADER_SLACK_MS) {
      return `the MCP's clock (${isoSeconds(serverDate)}) and the appliance's (${isoSeconds(now)}) differ by ${Math.round(Math.abs(serverDate - now) / 1000)} s`;
    }
    return null;
  }
}
