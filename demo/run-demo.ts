/**
 * npm run demo: one clinic appliance (simulated NixOS host) and the reference MCP over real mTLS.
 * The appliance starts with only a one-time enrollment token and the CA file, and enrolls first;
 * it renews its certificate and rotates its evidence key near the end.
 * Drift is injected, the MCP goes down and comes back, signed orders heal inside the maintenance
 * window, a forged order is rejected, a disruptive heal ordered in the afternoon is held by the
 * root healer and applied in the next night's window, a switch that fails its health check is
 * rolled back, the MCP's countersigned receipt is verified offline (the agent's verify and openssl
 * alone), an MCP withholding orders is caught by the MSP's signed heartbeats going stale; every
 * bundle is verified at the end. Exit 0 only if all holds.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness, type Harness } from '../testing/index.js';
import { verifyEnvelope, generateKeyFiles, loadSecretKeyFile, EVIDENCE_PAYLOAD_TYPE, type PublicKey } from '../src/crypto/index.js';
import { stageKeyRotation } from '../src/identity/index.js';
import { verifyPath, EvidenceBundleSchema, readChainHead, readStoredReceipts, type EvidenceBundle } from '../src/evidence/index.js';
import { readStatus } from '../src/observe/index.js';
import { prepareOrder, signOrder } from '../src/orders/index.js';
import type { AgentRuntime, CycleReport } from '../src/agent/index.js';
import { openStateDb, stateLayout } from '../src/state/index.js';

const keep = process.argv.includes('--keep');
const color = process.stdout.isTTY ? (c: number, s: string) => `\x1b[${c}m${s}\x1b[0m` : (_c: number, s: string) => s;
const step = (n: number, text: string) => console.log(`\n${color(1, `[${n}]`)} ${color(1, text)}`);
const info = (text: string) => console.log(`    ${text}`);
const t0 = performance.now();
const failures: string[] = [];

function expectThat(ok: boolean, what: string): void {
  info(`${ok ? color(32, 'ok  ') : color(31, 'FAIL')} ${what}`);
  if (!ok) failures.push(what);
}

/** Every evidence key the appliance has used, the enrolled one first (the demo rotates it once). */
const agentKeys: PublicKey[] = [];

function mcpBundles(h: Harness): EvidenceBundle[] {
  return [...h.mcp.evidence().values()]
    .map((e) => {
      const v = verifyEnvelope(e.envelope, EVIDENCE_PAYLOAD_TYPE, agentKeys);
      return v.ok ? EvidenceBundleSchema.parse(JSON.parse(v.payload.toString())) : null;
    })
    .filter((b): b is EvidenceBundle => b !== null)
    .sort((a, b) => a.seq - b.seq);
}

function describeCycle(h: Harness, r: CycleReport, since: number): EvidenceBundle[] {
  const fresh = mcpBundles(h).filter((b) => b.seq > since);
  const clock = new Date(h.host.now()).toISOString().slice(0, 16).replace('T', ' ');
  info(`${color(2, `${clock}Z`)} poll: ${r.polled}, bundles: ${r.bundles}, delivered to MCP: ${r.flushed.mcp ?? 0}`);
  for (const b of fresh) info(`  seq ${String(b.seq).padStart(3)}  ${b.check.padEnd(10)} ${b.outcome.padEnd(14)} ${b.reason ? color(2, b.reason.slice(0, 110)) : ''}`);
  return fresh;
}

async function cycle(h: Harness, rt: AgentRuntime): Promise<EvidenceBundle[]> {
  const since = mcpBundles(h).at(-1)?.seq ?? 0;
  const r = await rt.agent.cycle();
  return describeCycle(h, r, since);
}

/** Move the appliance clock to the next HH:MM UTC. */
function clockTo(h: Harness, hh: number, mm: number): void {
  const d = new Date(h.host.now());
  const target = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), hh, mm);
  h.host.setNow(target > h.host.now() ? target : target + 86_400_000);
}

/** The README's openssl recipe, run on `envelopeFile` with `pub`: no code of ours in the loop. */
function runOpensslRecipe(envelopeFile: string, pub: string, cwd: string): { verified: boolean; payload: string } {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const m = /<!-- openssl-recipe:start -->\n```sh\n([\s\S]*?)```\n<!-- openssl-recipe:end -->/.exec(readme);
  if (!m) return { verified: false, payload: 'README.md has no openssl recipe' };
  const script = m[1]!.replace(/^ENV=.*$/m, `ENV='${envelopeFile}'`).replace(/^PUB=.*$/m, `PUB='${pub}'`);
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd, encoding: 'utf8' });
  const payload = (() => {
    try {
      return JSON.stringify(JSON.parse(readFileSync(join(cwd, 'payload.bin'), 'utf8')));
    } catch {
      return '(no payload)';
    }
  })();
  return { verified: r.status === 0 && /Signature Verified Successfully/.test(r.stdout + r.stderr), payload };
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'compliance-agent-demo-'));
  step(1, 'Site setup: the MSP issues a one-time enrollment token; the appliance has only that token and the CA file');
  // The MSP signs a heartbeat order every 6 hours; the MCP relays it when it has nothing else.
  // Two-day certificates, so the demo's clock reaches the renewal (at half the lifetime).
  const h = await startHarness(dir, { config: { maintenanceWindow: '02:00-04:00' }, enrollment: { certLifetimeMs: 2 * 86_400_000 }, heartbeatEveryMs: 6 * 3_600_000 });
  info(`MCP ${h.mcp.url} (CA ${h.pki.caCert}; client certificates required except for POST /enroll)`);
  info(`appliance ${h.host.hostname()} running generation ${h.host.currentGeneration().number}, window ${h.config.maintenanceWindow} UTC`);
  info(`token file ${h.tokenFile} (one use, site clinic-001, 24 h); no key, no certificate yet`);
  const enrolled = await h.enroll();
  if (enrolled.kind !== 'enrolled') throw new Error('the appliance was already enrolled');
  info(`enrolled: keys made on the appliance, certificate ${enrolled.record.certificate_serial} until ${enrolled.record.certificate_not_after}`);
  info(`machine id ${enrolled.record.machine_id} (HMAC of /etc/machine-id keyed by the site)`);
  info(`evidence key ${h.agentPublicKeyText}, registered at the MCP by the enrollment`);
  agentKeys.push(h.agentPublicKey);
  expectThat(enrolled.tokenRemoved === true && h.mcp.enrollment!.enrolled.length === 1, 'token used once and deleted from the appliance');
  const rt = h.openAgent();
  try {
    step(2, 'First cycle over the issued certificate: the enrollment is the first bundle of the chain');
    const first = await cycle(h, rt);
    expectThat(first[0]?.check === 'enrollment' && first[0].seq === 1, 'seq 1 records the enrollment (machine id, key fingerprint, certificate serial and expiry)');
    expectThat(first.length === 7 && first.slice(1).every((b) => b.outcome === 'compliant'), 'six checks compliant, seven bundles received by the MCP');

    step(3, 'Drift: postgresql.service stopped, firewall opened to RDP (3389)');
    h.host.stopService('postgresql.service');
    h.host.changeFirewall((r) => r.replace('tcp dport { 22, 443 } accept', 'tcp dport { 22, 443, 3389 } accept'));
    h.host.advance(60_000);
    const drift = await cycle(h, rt);
    expectThat(drift.filter((b) => b.outcome === 'drift_detected').length === 2, 'services and firewall drift detected');

    step(4, 'MCP down for three cycles: fail closed, alert, evidence queued durably');
    h.mcp.setFault('down');
    h.host.setBackupAge(30);
    for (let i = 0; i < 3; i++) {
      h.host.advance(60_000);
      const r = await rt.agent.cycle();
      info(`poll: ${r.polled}, bundles created: ${r.bundles}, queued for the MCP: ${rt.agent.pending('mcp')}`);
    }
    const queued = rt.agent.pending('mcp');
    expectThat(queued >= 2, `${queued} bundles waiting in the SQLite outbox`);
    step(5, 'MCP back: the backlog is flushed in order, exactly once');
    h.mcp.setFault(null);
    h.host.advance(20 * 60_000);
    const flushed = await cycle(h, rt);
    expectThat(rt.agent.pending('mcp') === 0, 'queue drained');
    expectThat(
      flushed.some((b) => b.check === 'mcp' && b.outcome === 'failed'),
      'the outage is in the evidence (MCP unreachable, failing closed)',
    );
    h.host.setBackupAge(2);

    step(6, 'A forged order (signed by a key the appliance does not trust) is rejected with evidence, nothing runs');
    const rogue = loadSecretKeyFile(generateKeyFiles('attacker', join(dir, 'rogue-keys')).secretPath);
    h.mcp.enqueueOrder(
      signOrder(
        prepareOrder(
          {
            site_id: 'clinic-001',
            host_id: 'appliance-1',
            sequence: 999,
            policy_version: '1.0',
            type: 'apply_baseline',
            params: { revision: 'deadbeef'.repeat(5), flakeRef: `github:attacker/evil?rev=${'deadbeef'.repeat(5)}#appliance` },
          },
          { now: h.host.now() },
        ),
        rogue,
      ),
    );
    h.host.clearExecuted();
    h.host.advance(60_000);
    const forged = await cycle(h, rt);
    expectThat(forged.some((b) => b.outcome === 'rejected' && /unknown_key/.test(b.reason ?? '')) && h.host.actions().length === 0, 'rejected (unknown_key), no action taken');

    step(7, 'Signed heal order for services: a unit restart is not disruptive, so it runs at once (outside the window)');
    h.host.advance(60_000);
    h.mcp.enqueueOrder(h.signOrder('heal', { checks: ['services'] }));
    const healedSvc = await cycle(h, rt);
    expectThat(
      healedSvc.some((b) => b.check === 'services' && b.outcome === 'healed'),
      'services healed: postgresql.service restarted',
    );

    step(8, 'Signed heal order for the firewall at 14:00 UTC, valid for 15 minutes, execute_by in 36 h: the healer holds it');
    clockTo(h, 14, 0);
    h.host.clearExecuted();
    h.mcp.enqueueOrder(h.signOrder('heal', { checks: ['firewall'] }, { execute_by: new Date(h.host.now() + 36 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z') }));
    const deferred = await cycle(h, rt);
    expectThat(
      deferred.some((b) => b.outcome === 'deferred' && /held by the healer/.test(b.reason ?? '')) && h.host.actions().length === 0,
      "deferred (disruptive: a switch), held in the healer's own state, nothing run",
    );
    for (const [hh, mm] of [
      [14, 30],
      [23, 0],
    ] as const) {
      clockTo(h, hh, mm);
      const quiet = await cycle(h, rt);
      expectThat(
        !quiet.some((b) => b.check === 'firewall' && b.outcome !== 'drift_detected') && h.host.actions().length === 0,
        `${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}: still held (the order expired at 14:15; execute_by bounds the wait), nothing run`,
      );
    }

    step(9, 'The next night the window opens at 02:00: the healer runs the held order (build the pinned baseline flake, check its revision, activate), health check passes');
    clockTo(h, 2, 0);
    const healedFw = await cycle(h, rt);
    expectThat(
      healedFw.some((b) => b.check === 'firewall' && b.outcome === 'healed'),
      'firewall healed by a switch to the baseline flake, 12 hours after the order expired',
    );

    step(10, 'Signed apply_baseline to a new revision whose generation fails its health check: rolled back');
    const current = h.host.currentGeneration();
    const nextRef = 'git+https://git.msp.example/sites/clinic-001?ref=release-2026-11&rev=c0ffee0000000000000000000000000000000001#appliance';
    h.host.defineFlake(nextRef, {
      configurationRevision: 'c0ffee0000000000000000000000000000000001',
      release: current.release,
      nixpkgsRevision: current.nixpkgsRevision,
      units: current.units,
      ruleset: current.ruleset,
    });
    h.host.scriptRebuild({ mode: 'unhealthy', failUnit: 'postgresql.service' });
    h.host.advance(60_000);
    h.mcp.enqueueOrder(h.signOrder('apply_baseline', { revision: 'c0ffee0000000000000000000000000000000001', flakeRef: nextRef }));
    const rolled = await cycle(h, rt);
    expectThat(
      rolled.some((b) => b.outcome === 'rolled_back'),
      `rolled back to generation ${h.host.currentGeneration().number}`,
    );
    expectThat(h.host.currentGeneration().configurationRevision === current.configurationRevision, 'appliance runs the previous generation again');

    step(11, 'Signed apply_baseline whose build reports another revision than the one signed: refused, nothing activated');
    const claimed = 'c0ffee0000000000000000000000000000000002';
    const liarRef = `git+https://git.msp.example/sites/clinic-001?ref=release-2026-12&rev=${claimed}#appliance`;
    h.host.defineFlake(liarRef, {
      configurationRevision: 'badbadbadbadbadbadbadbadbadbadbadbadbad0',
      release: current.release,
      nixpkgsRevision: current.nixpkgsRevision,
      units: current.units,
      ruleset: current.ruleset,
    });
    h.host.clearExecuted();
    h.host.advance(60_000);
    h.mcp.enqueueOrder(h.signOrder('apply_baseline', { revision: claimed, flakeRef: liarRef }));
    const refused = await cycle(h, rt);
    expectThat(
      refused.some((b) => b.outcome === 'rejected' && /^revision_mismatch: /.test(b.reason ?? '')),
      'built, revision checked, refused with evidence',
    );
    expectThat(h.host.activations().length === 0 && h.host.actions().length === 0, 'switch-to-configuration never ran');

    step(12, 'Certificate renewal at half its lifetime, over the current mTLS identity, tried before it replaces the old one');
    const before = readFileSync(h.config.clientCertFile, 'utf8');
    h.host.advance(12 * 3_600_000);
    const renewed = await cycle(h, rt);
    expectThat(
      readFileSync(h.config.clientCertFile, 'utf8') !== before && renewed.some((b) => b.check === 'identity_renewal'),
      'renewed, recorded as evidence, delivered over the new certificate',
    );

    step(13, 'Evidence key rotation: the current key signs the bundle that introduces the next one');
    const next = stageKeyRotation(h.config, h.host.now());
    agentKeys.push({ keyId: next.keyId, publicKey: next.publicKey });
    h.host.stopService('postgresql.service');
    h.host.advance(60_000);
    const rotated = await cycle(h, rt);
    info(`new evidence key ${h.agentPublicKeyText}`);
    expectThat(rotated[0]?.check === 'key_rotation' && rotated.length > 1, 'rotation bundle signed by the old key; the drift after it signed by the new key, accepted by the MCP');

    step(14, 'Receipts: the MCP countersigned every bundle it stored; the newest receipt checked offline');
    const stateDb = openStateDb(stateLayout(h.config.stateDir).db, { readonly: true });
    const receipts = readStoredReceipts(stateDb);
    stateDb.close();
    const receiptFile = join(dir, 'newest-receipt.json');
    writeFileSync(receiptFile, receipts.at(-1) ?? '{}');
    const withReceipts = verifyPath(join(h.config.stateDir, 'evidence'), [agentKeys[0]!], {
      receipts: { source: receiptFile, envelopes: receipts, mcpKeys: [h.mcp.receiptPublicKey] },
    });
    info(`${receipts.length} receipts stored; verify --receipts: ${withReceipts.receipts?.acknowledged} bundles acknowledged, newest seq ${withReceipts.receipts?.newest?.seq}`);
    expectThat(
      withReceipts.ok && withReceipts.receipts?.acknowledged === withReceipts.verified.length,
      'every bundle on disk acknowledged by a receipt the MCP key countersigned (compliance-agent verify --receipts)',
    );
    const openssl = runOpensslRecipe(receiptFile, h.mcp.receiptKeyText, dir);
    info(`openssl: ${openssl.verified ? 'Signature Verified Successfully' : 'FAILED'}; receipt names ${openssl.payload.slice(0, 120)}`);
    expectThat(openssl.verified, 'the receipt verifies with openssl alone (README recipe, MCP receipt key)');

    step(15, 'The MCP withholds orders (204 for 25 h): the MSP-signed heartbeats go stale');
    h.mcp.setFault('withhold_orders');
    let staleSeen: EvidenceBundle | undefined;
    for (let i = 0; i < 5; i++) {
      h.host.advance(5 * 3_600_000);
      staleSeen ??= (await cycle(h, rt)).find((b) => b.check === 'control_plane' && b.outcome === 'failed');
    }
    const statusDb = openStateDb(stateLayout(h.config.stateDir).db, { readonly: true });
    const staleStatus = readStatus(statusDb, h.host.now(), { controlPlaneMaxAgeMs: h.config.controlPlaneMaxAge * 1000 }).controlPlane;
    statusDb.close();
    const staleMetric = readFileSync(stateLayout(h.config.stateDir).metrics, 'utf8').includes('compliance_agent_control_plane_stale 1');
    expectThat(
      staleSeen !== undefined && /^control_plane_stale/.test(staleSeen.reason ?? '') && staleStatus.stale && staleMetric,
      'control_plane_stale raised: alert bundle, status STALE, metric compliance_agent_control_plane_stale 1',
    );
    h.mcp.setFault(null);
    h.host.advance(60_000);
    const fresh = await cycle(h, rt);
    expectThat(
      fresh.some((b) => b.check === 'control_plane' && b.outcome === 'compliant'),
      'a signed heartbeat gets through: control plane fresh again',
    );

    step(16, 'Summary');
    h.host.advance(60_000);
    await rt.agent.cycle();
    const db = openStateDb(stateLayout(h.config.stateDir).db, { readonly: true });
    const created = readChainHead(db, h.config.hostId).seq;
    db.close();
    const received = h.mcp.evidence().size;
    const verified = mcpBundles(h);
    const chainAtMcp = verified.every((b, i) => b.seq === i + 1);
    // The auditor holds only the key from the enrollment bundle; verify follows the rotation.
    const local = verifyPath(join(h.config.stateDir, 'evidence'), [agentKeys[0]!]);
    const stats = h.mcp.stats();
    info(`bundles created   ${created}`);
    info(`bundles received  ${received} (posts on the wire ${stats.posts}, duplicates absorbed ${stats.duplicates})`);
    info(`bundles verified  ${verified.length} (Ed25519 DSSE, the enrolled key and its successor)`);
    info(`chain at MCP      ${chainAtMcp ? 'intact, seq 1..' + created : 'BROKEN'}`);
    info(
      `chain on disk     ${local.ok ? `intact (${local.verified.length} envelopes, verified from the enrolled key across the rotation)` : local.findings.map((f) => f.message).join('; ')}`,
    );
    info(`wall time         ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    expectThat(created === received && received === verified.length && chainAtMcp && local.ok, 'every bundle received, verified, chain intact');
    if (keep)
      info(
        `state kept in ${dir}: compliance-agent verify ${join(h.config.stateDir, 'evidence')} --pubkey '${(JSON.parse(readFileSync(join(h.dir, 'identity', 'enrollment.json'), 'utf8')) as { evidence_key: string }).evidence_key}'`,
      );
  } finally {
    await h.close();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
  console.log(failures.length === 0 ? color(32, '\ndemo passed') : color(31, `\ndemo FAILED: ${failures.join('; ')}`));
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
