import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness, type ReceiptFault } from '../../testing/index.js';
import { pruneStore } from '../../src/commands/prune.js';
import { loadSecretKeyFile, publicKeyOf, randomSeed } from '../../src/crypto/index.js';
import { signReceipt, type EvidenceBundle } from '../../src/evidence/index.js';
import { mcpClientOptions } from '../../src/agent/index.js';
import { McpClient } from '../../src/mcp/index.js';
import { readStatus } from '../../src/observe/index.js';
import { openStateDb, stateLayout, type StateDb } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

// The agent's real mTLS client, outbox, chain and prune against a reference MCP that lies about
// receipts, withholds orders or answers each POST after 59 s.
const tmp = tempDir('ca-control-plane-');
const harnesses: Harness[] = [];
afterAll(async () => {
  for (const h of harnesses) await h.close();
  tmp.cleanup();
});

async function harness(name: string, opts: Parameters<typeof startHarness>[1] = {}): Promise<{ h: Harness; db: StateDb }> {
  const h = await startHarness(join(tmp.path, name), opts);
  harnesses.push(h);
  const db = openStateDb(stateLayout(h.config.stateDir).db);
  return { h, db };
}

function bundles(db: StateDb, check?: string): EvidenceBundle[] {
  const rows = db.prepare('SELECT envelope FROM evidence ORDER BY seq').all() as { envelope: string }[];
  return rows
    .map((r) => JSON.parse(Buffer.from((JSON.parse(r.envelope) as { payload: string }).payload, 'base64').toString('utf8')) as EvidenceBundle)
    .filter((b) => !check || b.check === check);
}

const count = (db: StateDb, sql: string): number => (db.prepare(sql).get() as { n: number }).n;
const delivered = (db: StateDb) => count(db, "SELECT COUNT(*) AS n FROM outbox WHERE destination = 'mcp' AND state = 'done'");

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const LIES: ReceiptFault[] = ['other_bundle', 'wrong_hash', 'unsigned', 'wrong_key', 'receipt_id_only'];

describe('an MCP whose receipts do not acknowledge what was sent', () => {
  it('receipts for other bundles, with a wrong hash, unsigned, wrongly signed or bare: nothing delivered, nothing prunable, an alert; honest receipts then deliver and prune', async () => {
    const { h, db } = await harness('receipts', { config: { evidenceRetention: 1, pruneRetentionDays: 0 } });
    const rt = h.openAgent();
    const key = loadSecretKeyFile(h.config.signingKeyFile);
    for (const lie of LIES) {
      h.mcp.setFault({ receipts: lie });
      h.host.advance(16 * 60_000);
      // A change every cycle (backup age crosses its bound), so every cycle has new evidence.
      h.host.setBackupAge(LIES.indexOf(lie) % 2 ? 2 : 30);
      await rt.agent.cycle();
      // The MCP stored the bundles, but its word for them is refused: nothing is marked delivered.
      expect(h.mcp.evidence().size).toBeGreaterThan(0);
      expect(delivered(db), lie).toBe(0);
      expect(count(db, 'SELECT COUNT(*) AS n FROM receipts'), lie).toBe(0);
      const head = db.prepare("SELECT last_error FROM outbox WHERE destination = 'mcp' AND state = 'pending' AND last_error IS NOT NULL ORDER BY id LIMIT 1").get() as {
        last_error: string;
      };
      expect(head.last_error, lie).toMatch(/receipt/);
      // Nothing prunable: every bundle is old enough and outside evidenceRetention, none acknowledged.
      h.host.advance(60_000);
      expect(pruneStore(h.config, db, key, h.host.now()), lie).toMatchObject({ deleted: 0, checkpoints: [] });
    }
    // A receipt row forged into the database (another key) does not make anything prunable either.
    const [first] = bundles(db);
    const rogueSeed = randomSeed();
    const forged = signReceipt(
      {
        receipt_id: 'r-forged',
        bundle_id: first!.bundle_id,
        envelope_hash: (db.prepare('SELECT envelope_hash FROM evidence WHERE seq = 1').get() as { envelope_hash: string }).envelope_hash,
        site_id: 'clinic-001',
        host_id: 'appliance-1',
        seq: 1,
        received_at: '2026-11-23T12:00:00Z',
      },
      { keyId: 'mcp-receipts', seed: rogueSeed, publicKey: publicKeyOf(rogueSeed) },
    );
    db.prepare(
      'INSERT INTO receipts (bundle_id, host_id, seq, envelope_hash, receipt_id, receipt, keyid, received_at) SELECT bundle_id, host_id, seq, envelope_hash, ?, ?, ?, 0 FROM evidence WHERE seq = 1',
    ).run('r-forged', JSON.stringify(forged), 'mcp-receipts');
    expect(pruneStore(h.config, db, key, h.host.now()).deleted).toBe(0);
    db.prepare('DELETE FROM receipts').run();
    // The refused receipts are evidence: an `mcp` alert bundle, not one per cycle.
    const alerts = bundles(db, 'mcp').filter((b) => b.outcome === 'failed' && /^MCP receipt refused/.test(b.reason ?? ''));
    expect(alerts).toHaveLength(1);

    // The MCP tells the truth again: everything is delivered with countersigned receipts.
    h.mcp.setFault(null);
    h.host.advance(16 * 60_000);
    await rt.agent.cycle();
    expect(rt.agent.pending('mcp')).toBe(0);
    expect(count(db, "SELECT COUNT(*) AS n FROM receipts WHERE keyid = 'mcp-receipts'")).toBe(count(db, 'SELECT COUNT(*) AS n FROM evidence'));
    h.host.advance(60_000);
    const pruned = pruneStore(h.config, db, key, h.host.now());
    expect(pruned.deleted).toBeGreaterThan(0);
    expect(pruned.checkpoints).toHaveLength(1);
    expect(bundles(db, 'chain')).toHaveLength(1);
    // The auditor's check: the pruned directory starts where the checkpoint says, and the receipts verify.
    const v = cli([
      'verify',
      stateLayout(h.config.stateDir).evidence,
      '--pubkey',
      h.agentPublicKeyText,
      '--receipts',
      stateLayout(h.config.stateDir).db,
      '--mcp-key',
      h.mcp.receiptKeyText,
    ]);
    expect(v.stdout).toMatch(/receipts: \d+ checked, \d+ bundle\(s\) in the chain acknowledged by the MCP/);
    expect(v.code, v.stdout).toBe(0);
    await rt.close();
  });
});

describe('an MCP that answers 204 for longer than controlPlaneMaxAge', () => {
  it('raises control_plane_stale (evidence, status, metric) and clears it when a signed heartbeat gets through', async () => {
    const { h, db } = await harness('stale', { heartbeatEveryMs: 6 * 3_600_000 });
    const rt = h.openAgent();
    await rt.agent.cycle();
    expect(h.mcp.stats().heartbeatsServed).toBe(1);
    const signedAt = Math.floor(h.host.now() / 1000) * 1000;
    expect(readStatus(db, h.host.now()).controlPlane).toMatchObject({ signedAt, stale: false });

    h.mcp.setFault('withhold_orders');
    // 4 x 5 h = 20 h: under the 24 h bound, polls succeed, nothing is stale.
    for (let i = 0; i < 4; i++) {
      h.host.advance(5 * 3_600_000);
      expect((await rt.agent.cycle()).polled).toBe('none');
    }
    expect(bundles(db, 'control_plane')).toEqual([]);
    h.host.advance(5 * 3_600_000);
    await rt.agent.cycle();
    const stale = bundles(db, 'control_plane');
    expect(stale.map((b) => b.outcome)).toEqual(['failed']);
    expect(stale[0]!.reason).toMatch(/^control_plane_stale: the newest MSP-signed order was issued .*, 25 h ago, over controlPlaneMaxAge 86400 s/);
    const status = cli(['status', '--config', h.configPath, '--json']);
    // status reads the wall clock; the simulated one is ahead of it, so compare the signed time.
    expect((JSON.parse(status.stdout) as { controlPlane: unknown }).controlPlane).toMatchObject({ signedAt, maxAgeMs: 86_400_000 });
    expect(readStatus(db, h.host.now()).controlPlane.stale).toBe(true);
    expect(readFileSync(stateLayout(h.config.stateDir).metrics, 'utf8')).toContain('compliance_agent_control_plane_stale 1');
    // Still stale an hour later: no second alert until heartbeatInterval has passed.
    h.host.advance(30 * 60_000);
    await rt.agent.cycle();
    expect(bundles(db, 'control_plane')).toHaveLength(1);

    h.mcp.setFault(null);
    h.host.advance(60 * 60_000);
    await rt.agent.cycle();
    expect(bundles(db, 'control_plane').map((b) => b.outcome)).toEqual(['failed', 'compliant']);
    expect(readStatus(db, h.host.now()).controlPlane.stale).toBe(false);
    expect(readFileSync(stateLayout(h.config.stateDir).metrics, 'utf8')).toContain('compliance_agent_control_plane_stale 0');
    await rt.close();
  });
});

describe('an MCP that answers each POST after 59 s', () => {
  it('every cycle still polls and checks; the flush gives up at its budget and nothing is lost', async () => {
    const { h, db } = await harness('slow');
    const client = McpClient.create(mcpClientOptions(h.config));
    const calls: string[] = [];
    const rt = h.openAgent({
      mcp: {
        nextOrder: () => (calls.push('poll'), client.nextOrder()),
        postEvidenceBatch: (envs, budget) => (calls.push('post'), client.postEvidenceBatch(envs, budget)),
        close: () => client.close(),
      },
      extra: { flushBudgetMs: 300 },
    });
    await rt.agent.cycle();
    expect(rt.agent.pending('mcp')).toBe(0);
    h.mcp.setFault({ postDelayMs: 59_000 });
    const CYCLES = 4;
    for (let i = 0; i < CYCLES; i++) {
      // A change every cycle, so every cycle has new evidence to flush.
      h.host.setBackupAge(i % 2 ? 2 : 30);
      h.host.advance(h.config.pollInterval * 1000 + 16 * 60_000);
      const report = await rt.agent.cycle();
      expect(report.polled).toBe('none');
      expect(report.flushed.mcp).toBe(0);
      // The checks ran in this cycle, on this cycle's clock.
      expect(count(db, `SELECT COUNT(*) AS n FROM check_results WHERE checked_at = ${h.host.now()}`)).toBe(6);
    }
    // Poll, then (checks, chain and) one bounded flush, cycle after cycle, in that order.
    expect(calls.slice(2)).toEqual(Array.from({ length: CYCLES }, () => ['poll', 'post']).flat());
    const head = db.prepare("SELECT last_error FROM outbox WHERE destination = 'mcp' AND state = 'pending' ORDER BY id LIMIT 1").get() as { last_error: string };
    expect(head.last_error).toMatch(/flush budget is spent/);
    // Nothing lost: every bundle of those cycles is still queued.
    expect(delivered(db)).toBe(6);
    expect(rt.agent.pending('mcp')).toBe(count(db, 'SELECT COUNT(*) AS n FROM evidence') - 6);
    expect(rt.agent.pending('mcp')).toBeGreaterThanOrEqual(CYCLES);
    h.mcp.setFault(null);
    h.host.advance(16 * 60_000);
    await rt.agent.cycle();
    expect(rt.agent.pending('mcp')).toBe(0);
    await rt.close();
  });
});

describe('an evidence directory cut at either end', () => {
  it('verify fails and names the deleted newest or oldest bundle (given head, receipts, or no checkpoint)', async () => {
    const { h } = await harness('truncated');
    const rt = h.openAgent();
    for (let i = 0; i < 3; i++) {
      h.host.advance(h.config.heartbeatInterval * 1000);
      await rt.agent.cycle();
    }
    await rt.close();
    const dir = stateLayout(h.config.stateDir).evidence;
    const files = readdirSync(dir).sort();
    const args = ['verify', dir, '--pubkey', h.agentPublicKeyText];
    const withReceipts = [...args, '--receipts', stateLayout(h.config.stateDir).db, '--mcp-key', h.mcp.receiptKeyText];
    const headHash = (JSON.parse(cli([...args, '--json']).stdout) as { hosts: { headHash: string }[] }).hosts[0]!.headHash;
    expect(cli(withReceipts).code).toBe(0);
    expect(cli([...args, '--head', headHash]).code).toBe(0);

    const newest = files.at(-1)!;
    const newestSeq = Number(newest.slice(0, 10));
    unlinkSync(join(dir, newest));
    const byHead = cli([...args, '--head', headHash]);
    expect(byHead.code).toBe(1);
    expect(byHead.stdout).toContain(`FAIL truncated_end: expected head ${headHash} is not in the chain (newest present: host appliance-1 seq ${newestSeq - 1} `);
    const byReceipt = cli(withReceipts);
    expect(byReceipt.code).toBe(1);
    expect(byReceipt.stdout).toContain(`FAIL truncated_end: host appliance-1: bundle seq ${newestSeq} (`);
    expect(byReceipt.stdout).toContain(`was acknowledged by the MCP but is missing; the chain ends at seq ${newestSeq - 1}`);

    unlinkSync(join(dir, files[0]!));
    const oldest = cli(args);
    expect(oldest.code).toBe(1);
    expect(oldest.stdout).toContain(
      'FAIL truncated_start: host appliance-1: the chain starts at seq 2, but no checkpoint bundle accounts for seq 1: the oldest bundle(s) (seq 1 and before) were deleted or withheld',
    );
  });
});
