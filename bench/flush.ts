/**
 * MCP delivery micro-bench (no outbox): POST 10,000 signed evidence envelopes over loopback mTLS to
 * the reference MCP, running in its own process so client and server do not share an event loop.
 * Batch sizes 1 (single POST /evidence, one at a time), 50 and 200 (POST /evidence/batch).
 * The MCP is restarted per run, so every run delivers 10,000 new bundles, each verified by the MCP.
 *
 *   npx tsx bench/flush.ts [--count N] [--batches 1,50,200]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { execa, type ResultPromise } from 'execa';
import { AGENT_VERSION } from '../src/common/index.js';
import { EVIDENCE_PAYLOAD_TYPE, formatPublicKey, publicKeyOf, randomSeed, signEnvelope, type Envelope, type SecretKey } from '../src/crypto/index.js';
import type { EvidenceBundle } from '../src/evidence/index.js';
import { McpClient } from '../src/mcp/index.js';
import { generatePki, type Pki } from '../testing/index.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '10000' }, batches: { type: 'string', default: '1,50,200' } } });
const COUNT = Number(values.count);
const BATCHES = values.batches.split(',').map(Number);

function envelopes(key: SecretKey, n: number): Envelope[] {
  const t = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  return Array.from({ length: n }, (_, i) => {
    const bundle: EvidenceBundle = {
      version: '1.0',
      bundle_id: crypto.randomUUID(),
      site_id: 'clinic-001',
      host_id: 'appliance-1',
      deployment_mode: 'direct',
      reseller_id: null,
      timestamp_start: t,
      timestamp_end: t,
      policy_version: '1.0',
      ruleset_hash: `sha256:${'a'.repeat(64)}`,
      nixos_revision: '26.05.20261101.5880666',
      derivation_digest: `sha256:${'b'.repeat(64)}`,
      ntp_offset_ms: 3,
      check: 'services',
      pre_state: { units: { 'sshd.service': 'active', 'backup.service': 'active' } },
      action_taken: [],
      post_state: null,
      rollback_available: true,
      outcome: 'compliant',
      reason: null,
      agent_version: AGENT_VERSION,
      order_id: null,
      controls: ['HIPAA 164.312(b)', 'SOC 2 CC7.2'],
      seq: i + 1,
      prev_hash: null,
    };
    return signEnvelope(EVIDENCE_PAYLOAD_TYPE, Buffer.from(JSON.stringify(bundle)), key);
  });
}

interface RunningMcp {
  readonly url: string;
  /** Stops the MCP and returns its own summary line. */
  stop(): Promise<string>;
}

async function startMcp(pki: Pki, agentKey: string): Promise<RunningMcp> {
  const script = join(import.meta.dirname, '..', 'testing', 'reference-mcp', 'server.ts');
  // node itself (not npx) so SIGTERM reaches the MCP process.
  const child: ResultPromise = execa(process.execPath, ['--import', 'tsx', script, '--pki', pki.dir, '--agent-key', agentKey], {
    stdout: 'pipe',
    stderr: 'inherit',
  });
  const lines = createInterface({ input: child.stdout! });
  const iter = lines[Symbol.asyncIterator]();
  const first = await iter.next();
  if (first.done || !first.value.startsWith('https://')) throw new Error(`reference MCP did not start: ${String(first.value)}`);
  return {
    url: first.value,
    stop: async () => {
      child.kill('SIGTERM');
      const summary = await iter.next();
      await child;
      return summary.done ? '' : summary.value;
    },
  };
}

/** Wall seconds, and CPU seconds the client (the agent's side) spent. */
async function run(pki: Pki, key: SecretKey, batch: number, envs: Envelope[]): Promise<{ seconds: number; clientCpu: number }> {
  const mcp = await startMcp(pki, formatPublicKey(key.keyId, key.publicKey));
  const client = McpClient.create({
    mcpUrl: mcp.url,
    caFile: pki.caCert,
    clientCertFile: pki.clientCert,
    clientKeyFile: pki.clientKey,
    siteId: 'clinic-001',
    hostId: 'appliance-1',
  });
  try {
    // One warm-up exchange opens the mTLS connection, as a flushing agent's first request would.
    await client.nextOrder();
    const start = performance.now();
    const cpu = process.cpuUsage();
    for (let i = 0; i < envs.length; i += batch) {
      const slice = envs.slice(i, i + batch);
      const results = await client.postEvidenceBatch(slice);
      const bad = results.find((r) => r.kind !== 'ok');
      if (bad) throw new Error(`delivery failed at ${i}: ${JSON.stringify(bad)}`);
    }
    const used = process.cpuUsage(cpu);
    return { seconds: (performance.now() - start) / 1000, clientCpu: (used.user + used.system) / 1e6 };
  } finally {
    await client.close();
    const summary = await mcp.stop();
    // Checked even when a delivery failed: a wrong count at the MCP is the first thing to know.
    // eslint-disable-next-line no-unsafe-finally -- on purpose: this error replaces the delivery's
    if (!summary.startsWith(`evidence: ${envs.length} unique, 0 duplicates, 0 rejected`)) throw new Error(`MCP summary unexpected: ${summary}`);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-flush-'));
  try {
    const pki = await generatePki(join(dir, 'pki'), { clientCn: 'appliance-1' });
    const seed = randomSeed();
    const key: SecretKey = { keyId: 'appliance-1', seed, publicKey: publicKeyOf(seed) };
    const signStart = performance.now();
    const envs = envelopes(key, COUNT);
    const signSeconds = (performance.now() - signStart) / 1000;
    const avgBytes = Math.round(envs.reduce((n, e) => n + JSON.stringify(e).length, 0) / envs.length);
    console.log(`MCP delivery over loopback mTLS: ${COUNT} envelopes (~${avgBytes} B each), reference MCP in its own process verifying each`);
    console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}; signing ${COUNT} took ${signSeconds.toFixed(2)} s (not counted)`);
    console.log(
      `load average at start: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')} (other work on the machine skews the figures)`,
    );
    console.log('batch  seconds  bundles/s  client CPU s');
    for (const batch of BATCHES) {
      const { seconds, clientCpu } = await run(pki, key, batch, envs);
      console.log(
        `${String(batch).padStart(5)}  ${seconds.toFixed(2).padStart(7)}  ${Math.round(COUNT / seconds)
          .toString()
          .padStart(9)}  ${clientCpu.toFixed(2).padStart(12)}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
