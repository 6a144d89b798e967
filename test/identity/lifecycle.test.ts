import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, renameSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { startHarness, type Harness, SAMPLE_NOW } from '../../testing/index.js';
import { EvidenceBundleSchema, type EvidenceBundle } from '../../src/evidence/index.js';
import { formatStatus, readStatus } from '../../src/observe/index.js';
import { openStateDb, stateLayout } from '../../src/state/index.js';
import type { AgentRuntime } from '../../src/agent/index.js';
import { tempDir } from '../helpers/tmp.js';

const DAY = 86_400_000;
const open: { h: Harness; tmp: ReturnType<typeof tempDir> }[] = [];

afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.h.close();
    o.tmp.cleanup();
  }
});

async function enrolledAppliance(mcpNow?: () => number): Promise<{ h: Harness; rt: AgentRuntime }> {
  const tmp = tempDir();
  const h = await startHarness(tmp.path, { enrollment: mcpNow ? { now: mcpNow } : {} });
  open.push({ h, tmp });
  expect((await h.enroll()).kind).toBe('enrolled');
  const rt = h.openAgent();
  await rt.agent.cycle();
  return { h, rt };
}

/** Every bundle the appliance wrote, delivered or not, from its evidence directory. */
function localBundles(h: Harness): EvidenceBundle[] {
  const dir = join(h.config.stateDir, 'evidence');
  return readdirSync(dir)
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as { payload: string })
    .map((env) => EvidenceBundleSchema.parse(JSON.parse(Buffer.from(env.payload, 'base64').toString())));
}

function statusText(h: Harness): string {
  const db = openStateDb(stateLayout(h.config.stateDir).db, { readonly: true });
  try {
    return formatStatus(readStatus(db, h.host.now()), h.host.now());
  } finally {
    db.close();
  }
}

function serial(h: Harness): string {
  return new X509Certificate(readFileSync(h.config.clientCertFile)).serialNumber.toLowerCase();
}

describe('identity lifecycle of an enrolled appliance', () => {
  it('renews 30 days before expiry (clock advanced), over the current identity, records it, and polls with the new certificate', async () => {
    const { h, rt } = await enrolledAppliance();
    const first = serial(h);
    expect(statusText(h)).toMatch(new RegExp(`^identity: +ok, certificate ${first} valid until \\S+, renewal from \\S+$`, 'm'));
    h.host.advance(59 * DAY);
    await rt.agent.cycle();
    expect(serial(h)).toBe(first);
    h.host.advance(2 * DAY);
    const report = await rt.agent.cycle();
    const renewed = serial(h);
    expect(renewed).not.toBe(first);
    expect(report.polled).toBe('none');
    const renewal = localBundles(h).filter((b) => b.check === 'identity_renewal');
    expect(renewal).toHaveLength(1);
    expect(renewal[0]!.pre_state).toEqual({ certificate_serial: first });
    expect(renewal[0]!.post_state).toMatchObject({ certificate_serial: renewed });
    // Delivered over the renewed certificate: nothing waits in the queue.
    expect(rt.agent.pending('mcp')).toBe(0);
    expect([...h.mcp.evidence().values()].some((e) => (e.bundle as EvidenceBundle).check === 'identity_renewal')).toBe(true);
    // The renewed pair is what a restarted agent uses.
    const again = h.openAgent();
    expect((await again.agent.cycle()).polled).toBe('none');
    expect(readdirSync(join(h.dir, 'identity')).sort()).toEqual(['client-cert.pem', 'client-key.pem', 'enrollment.json', 'evidence-signing.key']);
  });

  it('a failed renewal keeps the current certificate, alerts once, and succeeds on a later cycle', async () => {
    const { h, rt } = await enrolledAppliance();
    const first = serial(h);
    h.host.advance(61 * DAY);
    h.mcp.setFault({ status: 503, body: 'maintenance' });
    await rt.agent.cycle();
    expect(serial(h)).toBe(first);
    expect(readdirSync(join(h.dir, 'identity')).sort()).toEqual(['client-cert.pem', 'client-key.pem', 'enrollment.json', 'evidence-signing.key']);
    expect(
      localBundles(h)
        .filter((b) => b.check === 'identity')
        .map((b) => b.post_state?.['state']),
    ).toEqual(['renewal_failed']);
    expect(statusText(h)).toMatch(/^identity: +RENEWAL FAILED: renewal due since \S+ failed: MCP refused the renewal \(HTTP 503\): maintenance$/m);
    h.mcp.setFault(null);
    h.host.advance(2 * 3_600_000);
    await rt.agent.cycle();
    expect(serial(h)).not.toBe(first);
    expect(
      localBundles(h)
        .filter((b) => b.check === 'identity')
        .map((b) => [b.outcome, b.post_state?.['state']]),
    ).toEqual([
      ['failed', 'renewal_failed'],
      ['compliant', 'ok'],
    ]);
  });

  it('an expired certificate: one alert bundle and EXPIRED in status', async () => {
    const { h, rt } = await enrolledAppliance();
    h.host.advance(91 * DAY);
    await rt.agent.cycle();
    await rt.agent.cycle();
    const alerts = localBundles(h).filter((b) => b.check === 'identity');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ outcome: 'failed', post_state: { state: 'expired' } });
    expect(alerts[0]!.reason).toMatch(/^identity expired: the mTLS certificate [0-9a-f]+ expired \S+; re-enroll with a new token$/);
    expect(statusText(h)).toMatch(/^identity: +EXPIRED: /m);
  });

  it('a revoked identity (403 from the MCP): its own alert bundle and REVOKED in status', async () => {
    const { h, rt } = await enrolledAppliance();
    h.mcp.enrollment!.revokeHost('clinic-001', 'appliance-1');
    h.host.advance(60_000);
    await rt.agent.cycle();
    const alerts = localBundles(h).filter((b) => b.check === 'identity');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ outcome: 'failed', post_state: { state: 'revoked' } });
    expect(alerts[0]!.reason).toMatch(
      /^identity revoked: the MCP refuses this appliance's identity \(HTTP 403, revoked\): MCP 127\.0\.0\.1:\d+ answered 403 to GET \/orders\/next: this appliance identity has been revoked by the MSP$/,
    );
    expect(statusText(h)).toMatch(/^identity: +REVOKED: /m);
  });

  it('clock skew (the appliance clock before the certificate start, the MCP content): its own alert bundle and CLOCK SKEW in status', async () => {
    const mcpNow = SAMPLE_NOW;
    const { h, rt } = await enrolledAppliance(() => mcpNow);
    h.host.setNow(SAMPLE_NOW - DAY);
    const report = await rt.agent.cycle();
    expect(report.polled).toBe('none');
    const alerts = localBundles(h).filter((b) => b.check === 'identity');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ outcome: 'failed', post_state: { state: 'clock_skew' } });
    expect(alerts[0]!.reason).toMatch(/^identity clock skew: the appliance clock \(\S+\) is before the certificate's start \S+$/);
    expect(statusText(h)).toMatch(/^identity: +CLOCK SKEW: /m);
  });

  it("clock skew seen on a renewal (the MCP's Date an hour behind): an alert, while the renewal itself is kept", async () => {
    let mcpNow = SAMPLE_NOW;
    const { h, rt } = await enrolledAppliance(() => mcpNow);
    const first = serial(h);
    h.host.advance(61 * DAY);
    mcpNow = h.host.now() - 3_600_000;
    await rt.agent.cycle();
    expect(serial(h)).not.toBe(first);
    const alerts = localBundles(h).filter((b) => b.check === 'identity');
    expect(alerts.map((b) => b.post_state?.['state'])).toEqual(['clock_skew']);
    expect(alerts[0]!.reason).toMatch(/^identity clock skew: the MCP's clock \(\S+\) and the appliance's \(\S+\) differ by 3600 s$/);
  });

  it('a renewal that cannot even be attempted (the CA file gone) is a renewal_failed alert, and the cycle goes on', async () => {
    const { h, rt } = await enrolledAppliance();
    renameSync(h.config.caFile, `${h.config.caFile}.moved`);
    try {
      h.host.advance(61 * DAY);
      const report = await rt.agent.cycle();
      expect(report.polled).toBe('none');
      const alerts = localBundles(h).filter((b) => b.check === 'identity');
      expect(alerts.map((b) => b.post_state?.['state'])).toEqual(['renewal_failed']);
      expect(alerts[0]!.reason).toContain('ENOENT');
    } finally {
      renameSync(`${h.config.caFile}.moved`, h.config.caFile);
    }
  });
});
