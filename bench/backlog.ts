/**
 * Flush of a 10,000-bundle backlog over loopback mTLS through the agent's own path: the durable
 * outbox (lease, ack, one commit per batch) and the undici mTLS client, driven by Agent.flush
 * exactly as a cycle after an outage does (batches of 200 to POST /evidence/batch).
 *
 *   npx tsx bench/backlog.ts [COUNT]      (default 10000)
 *
 * The backlog is made by the evidence chain (signed, chained, stored, enqueued in group commits of
 * 500) in a real state database; the reference MCP runs in its own process and verifies every
 * envelope with node:crypto before storing it, answering with a receipt it countersigns, which
 * the agent verifies against its pinned key before it counts the bundle delivered. Timed: Agent.flush from the first lease to the
 * queue drained; the MCP's own count must then show every bundle once.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { generatePki, baselineFor, simulatedAppliance } from '../testing/index.js';
import { openAgentRuntime } from '../src/agent/index.js';
import { silentLogger } from '../src/common/index.js';
import { parseConfig } from '../src/config/index.js';
import { generateKeyFiles, loadSecretKeyFile } from '../src/crypto/index.js';
import { EvidenceChain } from '../src/evidence/index.js';
import { Outbox } from '../src/queue/index.js';
import { openStateDb, stateLayout } from '../src/state/index.js';
import { sampleDraft } from '../test/helpers/evidence.js';
import { REPO, machine } from './lib.js';

export interface BacklogFigures {
  readonly bundles: number;
  readonly fillSeconds: number;
  readonly flushSeconds: number;
  readonly bundlesPerSecond: number;
  readonly cpuSeconds: number;
}

async function startMcp(pkiDir: string, agentKey: string, receiptKeyFile: string): Promise<{ url: string; stop: () => Promise<string> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO, 'testing', 'reference-mcp', 'server.ts'), '--pki', pkiDir, '--agent-key', agentKey, '--receipt-key', receiptKeyFile],
    {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done || !String(first.value).startsWith('https://')) throw new Error(`reference MCP did not start: ${String(first.value)}`);
  const exited = new Promise((r) => child.on('close', r));
  return {
    url: String(first.value),
    stop: async () => {
      child.kill('SIGTERM');
      const summary = await lines.next();
      await exited;
      return summary.done ? '' : String(summary.value);
    },
  };
}

export async function measureBacklog(count = 10_000): Promise<BacklogFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'ca-bench-backlog-'));
  try {
    const pki = await generatePki(join(dir, 'pki'), { clientCn: 'appliance-1', serverNames: ['127.0.0.1'] });
    const keys = generateKeyFiles('appliance-1', join(dir, 'keys'));
    const orderKeys = generateKeyFiles('msp', join(dir, 'msp'));
    const host = simulatedAppliance({ root: join(dir, 'appliance') });
    const baselinePath = join(dir, 'baseline.json');
    writeFileSync(baselinePath, JSON.stringify(baselineFor(host)));
    // The MCP countersigns every receipt and the agent pins its key, as in production.
    const receiptKeys = generateKeyFiles('mcp-receipts', join(dir, 'mcp'));
    const mcp = await startMcp(pki.dir, keys.publicKey, receiptKeys.secretPath);
    try {
      const config = parseConfig({
        mcpUrl: mcp.url,
        allowedHosts: ['127.0.0.1'],
        siteId: 'clinic-001',
        hostId: 'appliance-1',
        deploymentMode: 'direct',
        baselinePath,
        clientCertFile: pki.clientCert,
        clientKeyFile: pki.clientKey,
        signingKeyFile: keys.secretPath,
        caFile: pki.caCert,
        trustedOrderKeys: [orderKeys.publicKey],
        mcpReceiptKeys: [receiptKeys.publicKey],
        stateDir: join(dir, 'state'),
      });

      // The backlog an outage leaves: every bundle signed, chained, stored and queued for the MCP.
      const fillStart = performance.now();
      const db = openStateDb(stateLayout(config.stateDir).db);
      const chain = new EvidenceChain(db, loadSecretKeyFile(keys.secretPath), new Outbox(db));
      for (let done = 0; done < count; done += 500) {
        chain.append(
          Array.from({ length: Math.min(500, count - done) }, () => sampleDraft()),
          ['mcp'],
          Date.now(),
        );
      }
      db.close();
      const fillSeconds = (performance.now() - fillStart) / 1000;

      // One flush for the whole backlog: the per-cycle budgets are lifted to measure the pipeline.
      const rt = openAgentRuntime(config, { host, logger: silentLogger, extra: { flushMaxItems: count, flushBudgetMs: 600_000 } });
      try {
        const cpu = process.cpuUsage();
        const start = performance.now();
        const flushed = await rt.agent.flush();
        const flushSeconds = (performance.now() - start) / 1000;
        const used = process.cpuUsage(cpu);
        if (flushed.mcp !== count || rt.agent.pending() !== 0) throw new Error(`flushed ${flushed.mcp} of ${count}, ${rt.agent.pending()} left`);
        return { bundles: count, fillSeconds, flushSeconds, bundlesPerSecond: count / flushSeconds, cpuSeconds: (used.user + used.system) / 1e6 };
      } finally {
        await rt.close();
      }
    } finally {
      const summary = await mcp.stop();
      // Checked even when the flush failed: a wrong count at the MCP is the first thing to know.
      // eslint-disable-next-line no-unsafe-finally -- on purpose: this error replaces the flush's
      if (!summary.startsWith(`evidence: ${count} unique, 0 duplicates, 0 rejected`)) throw new Error(`MCP summary unexpected: ${summary}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const count = Number(process.argv[2] ?? 10_000);
  const m = machine();
  console.log(`backlog flush: ${count} bundles through the outbox and the mTLS client to the reference MCP (own process); ${m.cores} x ${m.cpu}, node ${m.node}`);
  const f = await measureBacklog(count);
  console.log(`filled in ${f.fillSeconds.toFixed(2)} s (chain + store + enqueue, 500 per commit)`);
  console.log(`flushed in ${f.flushSeconds.toFixed(2)} s: ${f.bundlesPerSecond.toFixed(0)} bundles/s, agent CPU ${f.cpuSeconds.toFixed(2)} s; MCP stored each exactly once`);
}
