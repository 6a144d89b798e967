import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { generatePki, type Pki } from '../../testing/index.js';
import { SyslogSink } from '../../src/outputs/index.js';
import { OUTCOMES, type Outcome } from '../../src/evidence/index.js';
import { tempDir } from '../helpers/tmp.js';
import { Rsyslog } from './rsyslog.js';
import { EvidenceQueue } from './evidence-queue.js';

const tmp = tempDir('ca-syslog-');
let pki: Pki;
let rsyslog: Rsyslog;
const sinks: SyslogSink[] = [];
const queues: EvidenceQueue[] = [];

beforeAll(async () => {
  pki = await generatePki(join(tmp.path, 'pki'));
  rsyslog = await Rsyslog.start(join(tmp.path, 'rsyslog'), {
    tls: { ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey },
    rogueTls: { ca: pki.rogueCaCert, cert: pki.rogueServerCert, key: pki.rogueServerKey },
  });
});

afterAll(async () => {
  for (const s of sinks) s.close();
  for (const q of queues) q.close();
  await rsyslog?.stop();
  tmp.cleanup();
});

let n = 0;
function queue(): EvidenceQueue {
  const q = new EvidenceQueue(join(tmp.path, `q${n++}`));
  queues.push(q);
  return q;
}

function tcpSink(): SyslogSink {
  const s = new SyslogSink({ target: { protocol: 'tcp', host: '127.0.0.1', port: rsyslog.ports.tcp } });
  sinks.push(s);
  return s;
}

function tlsSink(port = rsyslog.ports.tls!): SyslogSink {
  const s = new SyslogSink({ target: { protocol: 'tls', host: 'localhost', port }, ca: readFileSync(pki.caCert), caFile: pki.caCert });
  sinks.push(s);
  return s;
}

/** Written independently of the code under test: RFC 5424 severities chosen per outcome. */
const EXPECTED_SEVERITY: Record<Outcome, number> = { compliant: 6, healed: 5, deferred: 5, drift_detected: 4, rejected: 4, failed: 3, rolled_back: 3 };

function receivedFor(hostId: string) {
  return rsyslog.records().filter((r) => r.hostname === hostId);
}

async function waitFor(hostId: string, count: number) {
  await rsyslog.waitForRecords(rsyslog.records().length - receivedFor(hostId).length + count);
  return receivedFor(hostId);
}

describe('syslog to a real rsyslog', () => {
  it('TCP with octet counting: rsyslog parses every RFC 5424 field, the structured data and a severity per outcome', async () => {
    const q = queue();
    const host = 'appliance-tcp';
    const bundles = q.add(
      ['syslog'],
      OUTCOMES.map((outcome, i) => ({ host_id: host, outcome, check: `check-${i}`, reason: outcome === 'compliant' ? null : `because ${outcome}` })),
    );
    const report = await q.flush('syslog', tcpSink().deliver);
    expect(report).toMatchObject({ delivered: OUTCOMES.length, stoppedBy: 'drained' });

    const got = await waitFor(host, OUTCOMES.length);
    expect(got.map((r) => r.parsed['evidence@32473']!.bundle_id)).toEqual(bundles.map((b) => b.bundle.bundle_id));
    got.forEach((r, i) => {
      const b = bundles[i]!.bundle;
      expect(r).toMatchObject({
        input: 'tcp',
        version: '1',
        facility: 16,
        severity: EXPECTED_SEVERITY[b.outcome],
        pri: 16 * 8 + EXPECTED_SEVERITY[b.outcome],
        hostname: host,
        app: 'compliance-agent',
        procid: String(process.pid),
        msgid: b.outcome,
      });
      expect(new Date(r.timestamp).getTime()).toBe(new Date(b.timestamp_end).getTime());
      expect(r.parsed['evidence@32473']).toEqual({
        bundle_id: b.bundle_id,
        seq: String(b.seq),
        site_id: b.site_id,
        host_id: host,
        reseller_id: 'msp-alpha',
        check: b.check,
        outcome: b.outcome,
        policy_version: '1.0',
        controls: 'HIPAA 164.312(b)',
      });
      expect(r.parsed.origin).toMatchObject({ software: 'compliance-agent' });
      expect(r.msg).toBe(`${b.check} ${b.outcome} on ${host} (site clinic-001)${b.reason ? `: ${b.reason}` : ''}`);
    });
    expect(q.stats('syslog')).toMatchObject({ done: OUTCOMES.length, pending: 0, dead: 0 });
  });

  it('escapes " \\ ] in SD values so rsyslog reads them back unchanged; a UTF-8 MSG carries the BOM', async () => {
    const q = queue();
    const host = 'appliance-esc';
    const nasty = 'we"ird\\che]ck [x="y"]';
    const [b] = q.add(['syslog'], [{ host_id: host, check: nasty, outcome: 'drift_detected', reason: 'räksmörgås… line\nbreak', order_id: 'ord"]1' }]);
    await q.flush('syslog', tcpSink().deliver);
    const [r] = await waitFor(host, 1);
    expect(r!.parsed['evidence@32473']).toMatchObject({ check: nasty, order_id: 'ord"]1', bundle_id: b!.bundle.bundle_id });
    expect(r!.sd).toContain('check="we\\"ird\\\\che\\]ck [x=\\"y\\"\\]"');
    expect(r!.msg).toBe(`\uFEFF${nasty} drift_detected on ${host} (site clinic-001): räksmörgås… line break`);
  });

  it('TLS (RFC 5425) to the gtls listener with the CA pinned', async () => {
    const q = queue();
    const host = 'appliance-tls';
    const bundles = q.add(['syslog'], [{ host_id: host, outcome: 'healed' }, { host_id: host, outcome: 'rolled_back' }, { host_id: host }]);
    expect(await q.flush('syslog', tlsSink().deliver)).toMatchObject({ delivered: 3, stoppedBy: 'drained' });
    const got = await waitFor(host, 3);
    expect(got.map((r) => r.input)).toEqual(['tls', 'tls', 'tls']);
    expect(got.map((r) => r.parsed['evidence@32473']!.bundle_id)).toEqual(bundles.map((b) => b.bundle.bundle_id));
    expect(got.map((r) => r.severity)).toEqual([5, 3, 6]);
  });

  it('refuses a TLS receiver whose certificate another CA signed: nothing sent, retried, one clear line', async () => {
    const q = queue();
    const [b] = q.add(['syslog'], [{ host_id: 'appliance-rogue' }]);
    const report = await q.flush('syslog', tlsSink(rsyslog.ports.rogue).deliver);
    expect(report).toMatchObject({ delivered: 0, retried: 1, stoppedBy: 'retry' });
    const row = q.db.prepare('SELECT state, attempts, last_error FROM outbox WHERE bundle_id = ?').get(b!.bundle.bundle_id) as {
      state: string;
      attempts: number;
      last_error: string;
    };
    expect(row).toMatchObject({ state: 'pending', attempts: 1 });
    expect(row.last_error).toBe(
      `syslog: TLS to tls://localhost:${rsyslog.ports.rogue} failed: server certificate is not signed by the CA in ${pki.caCert} (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
    expect(rsyslog.records().some((r) => r.input === 'rogue')).toBe(false);
  });

  it.each(['tcp', 'tls'] as const)('%s: receiver down for a while, messages retried and delivered later, none lost, none out of order', async (protocol) => {
    const q = queue();
    const host = `appliance-outage-${protocol}`;
    const sink = protocol === 'tcp' ? tcpSink() : tlsSink();
    const before = q.add(
      ['syslog'],
      Array.from({ length: 5 }, () => ({ host_id: host })),
    );
    expect(await q.flush('syslog', sink.deliver)).toMatchObject({ delivered: 5 });
    await waitFor(host, 5);

    await rsyslog.stop();
    const during = q.add(
      ['syslog'],
      Array.from({ length: 5 }, () => ({ host_id: host })),
    );
    const failed = await q.flush('syslog', sink.deliver);
    expect(failed).toMatchObject({ delivered: 0, stoppedBy: 'retry' });
    q.advance();
    expect(await q.flush('syslog', sink.deliver)).toMatchObject({ delivered: 0, stoppedBy: 'retry' });
    expect(q.stats('syslog')).toMatchObject({ pending: 5, done: 5 });
    const head = q.db.prepare(`SELECT attempts, last_error FROM outbox WHERE destination = 'syslog' AND state = 'pending' ORDER BY id LIMIT 1`).get() as {
      attempts: number;
      last_error: string;
    };
    expect(head.attempts).toBe(2);
    expect(head.last_error).toMatch(/refused \(ECONNREFUSED\)/);

    await rsyslog.restart();
    const after = q.add(
      ['syslog'],
      Array.from({ length: 3 }, () => ({ host_id: host })),
    );
    q.advance();
    expect(await q.flush('syslog', sink.deliver)).toMatchObject({ delivered: 8, stoppedBy: 'drained' });

    const got = await waitFor(host, 13);
    expect(got).toHaveLength(13);
    expect(got.map((r) => r.parsed['evidence@32473']!.bundle_id)).toEqual([...before, ...during, ...after].map((b) => b.bundle.bundle_id));
    expect(got.map((r) => Number(r.parsed['evidence@32473']!.seq))).toEqual(Array.from({ length: 13 }, (_, i) => i + 1));
    expect(q.stats('syslog')).toMatchObject({ pending: 0, done: 13, dead: 0 });
  });
});
