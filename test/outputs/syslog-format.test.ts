import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { escapeSdValue, formatRfc5424, formatStructuredData, octetFrame, syslogMessage, webhookPayload, MAX_MESSAGE_OCTETS, type Rfc5424Message } from '../../src/outputs/index.js';
import { EvidenceBundleSchema } from '../../src/evidence/index.js';
import { sampleDraft } from '../helpers/evidence.js';
import { seeded } from '../helpers/fuzz.js';

const base: Rfc5424Message = {
  facility: 16,
  severity: 4,
  timestamp: new Date('2026-11-23T12:00:00.250Z'),
  hostname: 'appliance-1',
  appName: 'compliance-agent',
  procId: '4242',
  msgId: 'drift_detected',
  structuredData: [
    {
      id: 'evidence@32473',
      params: [
        ['bundle_id', 'b-1'],
        ['check', 'a"b\\c]d'],
      ],
    },
  ],
  message: 'firewall drift_detected',
};

/** An independent reader of one PARAM-VALUE body: backslash takes the next character literally. */
function unescape(escaped: string): string {
  return escaped.replace(/\\(["\\\]])/g, '$1');
}

describe('RFC 5424 formatting', () => {
  it('lays out PRI, version, timestamp, header fields, structured data and MSG', () => {
    expect(formatRfc5424(base).toString()).toBe(
      '<132>1 2026-11-23T12:00:00.250Z appliance-1 compliance-agent 4242 drift_detected [evidence@32473 bundle_id="b-1" check="a\\"b\\\\c\\]d"] firewall drift_detected',
    );
  });

  it('uses NILVALUE for empty fields and no structured data, and makes header fields printable', () => {
    const m = formatRfc5424({ ...base, timestamp: null, hostname: 'a host\u00e9', procId: '', structuredData: [], message: '' }).toString();
    expect(m).toBe('<132>1 - a_host_ compliance-agent - drift_detected -');
  });

  it('marks a non-ASCII MSG as UTF-8 with a BOM and replaces control characters', () => {
    const m = formatRfc5424({ ...base, structuredData: [], message: 'naïve\r\nline' });
    expect(m.toString()).toBe('<132>1 2026-11-23T12:00:00.250Z appliance-1 compliance-agent 4242 drift_detected - \uFEFFnaïve  line');
  });

  it('cuts MSG to fit the 2048-octet limit without splitting a character', () => {
    const m = formatRfc5424({ ...base, message: 'é'.repeat(5000) });
    expect(m.length).toBeLessThanOrEqual(MAX_MESSAGE_OCTETS);
    expect(m.length).toBeGreaterThan(MAX_MESSAGE_OCTETS - 2);
    expect(m.toString('utf8')).not.toContain('\uFFFD');
  });

  it('refuses SD names that would break the syntax and out-of-range PRI parts', () => {
    expect(() => formatStructuredData([{ id: 'bad id', params: [] }])).toThrow(/invalid SD name/);
    expect(() => formatStructuredData([{ id: 'x@1', params: [['a=b', 'v']] }])).toThrow(/invalid SD name/);
    expect(() => formatRfc5424({ ...base, facility: 24 })).toThrow(/facility/);
    expect(() => formatRfc5424({ ...base, severity: 8 })).toThrow(/severity/);
  });

  it('escapes every ", \\ and ] in SD values and nothing else (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (v) => {
        const e = escapeSdValue(v);
        expect(unescape(e)).toBe(v);
        // No unescaped quote or bracket is left to end the value early.
        expect(e.replace(/\\["\\\]]/g, '')).not.toMatch(/["\]\\]/);
      }),
      seeded('SD value escaping', { numRuns: 2000 }),
    );
  });

  it('frames with the octet count (RFC 6587), not the character count', () => {
    const msg = Buffer.from('<134>1 - h app - - - \uFEFFé');
    const framed = octetFrame(msg).toString('utf8');
    expect(framed.startsWith(`${msg.length} <134>`)).toBe(true);
    expect(msg.length).toBeGreaterThan('<134>1 - h app - - - \uFEFFé'.length);
  });
});

/** Strings heavy in what costs most once escaped and encoded: quotes, backslashes, brackets, 4-byte characters. */
const hostile = fc.string({ unit: fc.constantFrom('"', '\\', ']', 'é', '😀', 'a', ' '), minLength: 150, maxLength: 600, size: 'max' });

describe('evidence as syslog', () => {
  it('carries no pre/post state contents and no flake reference', () => {
    const bundle = EvidenceBundleSchema.parse({
      version: '1.0',
      ...sampleDraft({
        outcome: 'healed',
        pre_state: { secretish: 'PRE-STATE-MARKER' },
        post_state: { secretish: 'POST-STATE-MARKER' },
        action_taken: [{ command: 'nixos-rebuild', args: ['switch', '--flake', 'git+https://token@git.example/site#app'], status: 'ok', exit_code: 0, duration_ms: 5 }],
      }),
      agent_version: '0.1.0',
      seq: 1,
      prev_hash: null,
    });
    const text = syslogMessage(bundle).toString();
    expect(text).not.toMatch(/MARKER|token@/);
    expect(text.length).toBeLessThanOrEqual(MAX_MESSAGE_OCTETS);
  });

  it('carries no flake reference in the reason either, where the healer names its commands', () => {
    const flake = 'git+https://oauth2:token@git.example/site?ref=main#app';
    const reasons: Array<[string, string]> = [
      [`nixos-rebuild switch --flake ${flake}: ok; systemctl restart sshd.service: ok`, 'nixos-rebuild switch --flake [flake]: ok; systemctl restart sshd.service: ok'],
      [
        `disruptive action(s) (nixos-rebuild switch --flake ${flake}; systemctl restart systemd-journald.service) deferred: outside the maintenance window`,
        'disruptive action(s) (nixos-rebuild switch --flake [flake]; systemctl restart systemd-journald.service) deferred: outside the maintenance window',
      ],
    ];
    for (const [reason, told] of reasons) {
      const bundle = EvidenceBundleSchema.parse({ version: '1.0', ...sampleDraft({ outcome: 'deferred', reason }), agent_version: '0.1.0', seq: 1, prev_hash: null });
      expect(syslogMessage(bundle).toString()).not.toMatch(/token@/);
      expect(webhookPayload(bundle).data.reason).toBe(told);
    }
  });

  it('stays within 2048 octets whatever the bundle fields hold', () => {
    fc.assert(
      fc.property(hostile, hostile, hostile, fc.array(hostile, { maxLength: 20 }), (check, reason, id, controls) => {
        const bundle = EvidenceBundleSchema.parse({
          version: '1.0',
          ...sampleDraft({ check, reason, controls, site_id: id, host_id: id, reseller_id: id, order_id: id, policy_version: id }),
          agent_version: '0.1.0',
          seq: 7,
          prev_hash: null,
        });
        expect(syslogMessage(bundle).length).toBeLessThanOrEqual(MAX_MESSAGE_OCTETS);
      }),
      seeded('syslog message size', { numRuns: 300 }),
    );
  });
});
