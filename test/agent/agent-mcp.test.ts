import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync, existsSync } from 'node:fs';
import { startHarness, type Harness } from '../../testing/index.js';
import { verifyPath, EvidenceBundleSchema, type EvidenceBundle } from '../../src/evidence/index.js';
import { verifyEnvelope, EVIDENCE_PAYLOAD_TYPE } from '../../src/crypto/index.js';
import { tempDir } from '../helpers/tmp.js';
import { McpClient } from '../../src/mcp/index.js';
import { openStateDb, stateLayout } from '../../src/state/index.js';

const tmp = tempDir();
let h: Harness;

beforeAll(async () => {
  h = await startHarness(tmp.path);
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

/** Bundles the MCP stored, verified independently of the agent's code path, in seq order. */
function received(): EvidenceBundle[] {
  return [...h.mcp.evidence().values()]
    .map((e) => {
      const v = verifyEnvelope(e.envelope, EVIDENCE_PAYLOAD_TYPE, [h.agentPublicKey]);
      if (!v.ok) throw new Error(`MCP holds an unverifiable envelope: ${v.message}`);
      return EvidenceBundleSchema.parse(JSON.parse(v.payload.toString()));
    })
    .sort((a, b) => a.seq - b.seq);
}

describe('agent against the reference MCP over mTLS', () => {
  it('reports a compliant appliance, then drift, then heartbeats only when due', async () => {
    const rt = h.openAgent();
    const first = await rt.agent.cycle();
    expect(first.polled).toBe('none');
    expect(first.results.every((r) => r.status === 'compliant')).toBe(true);
    expect(first.bundles).toBe(6);
    expect(rt.agent.pending()).toBe(0);
    expect(received().map((b) => [b.check, b.outcome])).toEqual(
      expect.arrayContaining([
        ['patching', 'compliant'],
        ['services', 'compliant'],
        ['backup', 'compliant'],
        ['firewall', 'compliant'],
        ['encryption', 'compliant'],
        ['time', 'compliant'],
      ]),
    );

    // Nothing changed: no new evidence until the heartbeat interval passes.
    h.host.advance(60_000);
    expect((await rt.agent.cycle()).bundles).toBe(0);

    h.host.stopService('postgresql.service');
    h.host.changeFirewall((r) => r.replace('tcp dport { 22, 443 } accept', 'tcp dport { 22, 443, 3389 } accept'));
    h.host.advance(60_000);
    const drift = await rt.agent.cycle();
    expect(drift.bundles).toBe(2);
    const latest = received().slice(-2);
    expect(latest.map((b) => [b.check, b.outcome]).sort()).toEqual([
      ['firewall', 'drift_detected'],
      ['services', 'drift_detected'],
    ]);
    const services = latest.find((b) => b.check === 'services')!;
    expect(services.reason).toContain('postgresql.service');
    expect(services.controls.length).toBeGreaterThan(0);
    expect(services.site_id).toBe('clinic-001');
    expect(services.nixos_revision).toBeTruthy();
    expect(services.ruleset_hash).toMatch(/^sha256:/);

    h.host.advance(h.config.heartbeatInterval * 1000);
    expect((await rt.agent.cycle()).bundles).toBe(6);
    await rt.close();
  });

  it('fails closed while the MCP is down: alert evidence, everything queued, flushed once it is back', async () => {
    const rt = h.openAgent();
    const before = h.mcp.stats().unique;
    h.mcp.setFault('down');
    h.host.advance(60_000);
    h.host.setNtpOffsetMs(9000);
    const down = await rt.agent.cycle();
    expect(down.polled).toBe('failed');
    h.host.advance(60_000);
    await rt.agent.cycle();
    h.host.advance(60_000);
    h.host.setNtpOffsetMs(1);
    await rt.agent.cycle();
    expect(rt.agent.pending('mcp')).toBeGreaterThanOrEqual(3);
    expect(h.mcp.stats().unique).toBe(before);

    h.mcp.setFault(null);
    // Past any backoff the outage caused.
    h.host.advance(30 * 60_000);
    const up = await rt.agent.cycle();
    expect(up.polled).toBe('none');
    expect(rt.agent.pending()).toBe(0);
    const all = received();
    const outage = all.filter((b) => b.check === 'mcp');
    expect(outage.map((b) => b.outcome)).toEqual(['failed', 'compliant']);
    expect(outage[0]!.reason).toMatch(/MCP unreachable, failing closed/);
    expect(
      all
        .filter((b) => b.check === 'time')
        .map((b) => b.outcome)
        .slice(-2),
    ).toEqual(['drift_detected', 'compliant']);
    // Exactly once at the MCP, and the chain it holds has no gap.
    expect(all.map((b) => b.seq)).toEqual(all.map((_, i) => i + 1));
    expect(h.mcp.stats().duplicates).toBe(0);
    await rt.close();
  });

  it('fails closed on a DNS failure too: an alert bundle naming the name that did not resolve, nothing acted on', async () => {
    const dnsDown = McpClient.create({
      mcpUrl: 'https://mcp.nonexistent.invalid',
      caFile: h.pki.caCert,
      clientCertFile: h.pki.clientCert,
      clientKeyFile: h.pki.clientKey,
      siteId: 'clinic-001',
      hostId: 'appliance-1',
    });
    const rt = h.openAgent({ mcp: dnsDown });
    h.host.clearExecuted();
    h.host.advance(60_000);
    const r = await rt.agent.cycle();
    expect(r.polled).toBe('failed');
    expect(h.host.actions()).toEqual([]);
    const db = openStateDb(stateLayout(h.config.stateDir).db, { readonly: true });
    const last = db.prepare("SELECT envelope FROM evidence WHERE check_name = 'mcp' ORDER BY seq DESC LIMIT 1").get() as { envelope: string };
    db.close();
    const bundle = JSON.parse(Buffer.from((JSON.parse(last.envelope) as { payload: string }).payload, 'base64').toString()) as EvidenceBundle;
    expect(bundle.outcome).toBe('failed');
    expect(bundle.reason).toMatch(/failing closed \(no order acted on\): cannot resolve mcp\.nonexistent\.invalid/);
    await rt.close();
    // Once the name resolves again (here: the real MCP), the alert is delivered like any bundle.
    const back = h.openAgent();
    h.host.advance(30 * 60_000);
    await back.agent.cycle();
    expect(back.agent.pending()).toBe(0);
    expect(received().map((b) => b.bundle_id)).toContain(bundle.bundle_id);
    await back.close();
  });

  it('keeps an auditor-verifiable chain on disk, status and metrics', async () => {
    const report = verifyPath(join(h.config.stateDir, 'evidence'), [h.agentPublicKey]);
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.hosts[0]!.count).toBe(received().length);
    const metrics = readFileSync(stateLayout(h.config.stateDir).metrics, 'utf8');
    expect(metrics).toMatch(/compliance_agent_queue_depth\{destination="mcp"\} 0/);
    expect(metrics).toMatch(/compliance_agent_check_status\{check="time"\} 0/);
    expect(existsSync(join(h.config.stateDir, 'state.db'))).toBe(true);
  });

  it('an idle cycle reuses what only a switch changes; a cycle with an order checks everything fresh', async () => {
    const rt = h.openAgent();
    const commands = () => h.host.executed.map((e) => e.command);
    await rt.agent.cycle();
    h.host.advance(60_000);
    h.host.clearExecuted();
    await rt.agent.cycle();
    expect(commands()).toContain('systemctl');
    for (const reused of ['nixos-version', 'lsblk', 'cryptsetup', 'chronyc']) expect(commands()).not.toContain(reused);

    h.mcp.enqueueOrder(h.signOrder('run_checks', {}));
    h.host.advance(60_000);
    h.host.clearExecuted();
    const withOrder = await rt.agent.cycle();
    expect(withOrder.polled).toBe('order');
    expect(commands()).toEqual(expect.arrayContaining(['nixos-version', 'lsblk', 'cryptsetup', 'chronyc', 'systemctl']));
    expect(withOrder.results.every((r) => r.reusedFrom === undefined)).toBe(true);
    await rt.close();
  });

  it('a heal order is answered within its cycle: request, healer, collect, then the state checked again', async () => {
    const rt = h.openAgent();
    h.host.stopService('sshd.service');
    h.host.advance(60_000);
    await rt.agent.cycle();
    const lastSeq = received().at(-1)!.seq;
    h.mcp.enqueueOrder(h.signOrder('heal', { checks: ['services'] }));
    h.host.advance(60_000);
    h.host.clearExecuted();
    const healCycle = await rt.agent.cycle();
    expect(h.host.actions()).toContain('systemctl restart -- sshd.service');
    // The healer's answer is collected after it ran, in this cycle, before the fresh check's bundle.
    const services = received().filter((b) => b.seq > lastSeq && b.check === 'services');
    expect(services.map((b) => b.outcome)).toEqual(['healed', 'compliant']);
    expect(healCycle.results.find((r) => r.check === 'services')?.status).toBe('compliant');
    await rt.close();
  });
});
