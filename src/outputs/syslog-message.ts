import { AGENT_VERSION, clip } from '../common/index.js';
import type { EvidenceBundle, Outcome } from '../evidence/index.js';
import { clipSdValue, formatRfc5424, type SdElement } from './syslog-format.js';
import { summarize } from './summary.js';

const SYSLOG_APP_NAME = 'compliance-agent';

/**
 * Private SD-ID under 32473, the example enterprise number RFC 5612 reserves for documentation;
 * an MSP with its own IANA PEN would put it here.
 */
const EVIDENCE_SD_ID = 'evidence@32473';

/**
 * local0: these messages go straight to the reseller's SIEM, not through the appliance's syslog,
 * and local0 is the facility set aside for site applications that every receiver names the same
 * way. auth/authpriv would mix evidence into login records, and RFC 5424's "log audit" (13) has
 * no name in glibc and differing names across receivers.
 */
const SYSLOG_FACILITY = 16;

/**
 * Severity by outcome. Healthy states are informational; a change the agent made is a notice;
 * drift and refused orders are warnings (nothing changed on the appliance, but someone should
 * look; a forged order is told apart by `reason`, which SIEM rules can escalate); a failed or
 * rolled-back heal leaves the appliance out of its baseline: an error.
 */
const SEVERITY: Record<Outcome, number> = {
  compliant: 6,
  healed: 5,
  deferred: 5,
  drift_detected: 4,
  rejected: 4,
  failed: 3,
  rolled_back: 3,
};

/**
 * Escaped octets per SD value (controls get more): with the header capped too, the header and
 * structured data stay under 1800 octets whatever the bundle holds, leaving room for MSG.
 */
const MAX_SD_VALUE_OCTETS = 96;
const MAX_CONTROLS_OCTETS = 384;
const MAX_HOSTNAME_CHARS = 128;

/** One RFC 5424 message for a bundle: key fields in structured data, a one-line summary as MSG. */
export function syslogMessage(bundle: EvidenceBundle, procId: string = String(process.pid)): Buffer {
  const s = summarize(bundle);
  const params: [string, string][] = [
    ['bundle_id', s.bundle_id],
    ['seq', String(s.seq)],
    ['site_id', s.site_id],
    ['host_id', s.host_id],
    ...(s.reseller_id === null ? [] : ([['reseller_id', s.reseller_id]] as [string, string][])),
    ['check', s.check],
    ['outcome', s.outcome],
    ['policy_version', s.policy_version],
    ...(s.order_id === null ? [] : ([['order_id', s.order_id]] as [string, string][])),
    ...(s.controls.length === 0 ? [] : ([['controls', s.controls.join('; ')]] as [string, string][])),
  ];
  const evidence: SdElement = { id: EVIDENCE_SD_ID, params: params.map(([n, v]) => [n, clipSdValue(v, n === 'controls' ? MAX_CONTROLS_OCTETS : MAX_SD_VALUE_OCTETS)] as const) };
  const origin: SdElement = {
    id: 'origin',
    params: [
      ['software', SYSLOG_APP_NAME],
      ['swVersion', clip(AGENT_VERSION, 32)],
    ],
  };
  const text = `${s.check} ${s.outcome} on ${s.host_id} (site ${s.site_id})${s.reason ? `: ${s.reason}` : ''}`;
  return formatRfc5424({
    facility: SYSLOG_FACILITY,
    severity: SEVERITY[s.outcome],
    timestamp: new Date(s.timestamp_end),
    hostname: s.host_id.slice(0, MAX_HOSTNAME_CHARS),
    appName: SYSLOG_APP_NAME,
    procId,
    msgId: s.outcome,
    structuredData: [evidence, origin],
    message: text,
  });
}
