import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../testing/index.js';
import { AgentError, createLogger } from '../../src/common/index.js';
import { EVIDENCE_PAYLOAD_TYPE, verifyEnvelope } from '../../src/crypto/index.js';
import { EvidenceBundleSchema, readChainHead, verifyPath } from '../../src/evidence/index.js';
import { openStateDb, stateLayout, type StateDb } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

// The agent's whole state directory on a real 1 MiB tmpfs (root, as CI runs): a mount failure fails the test.
const tmp = tempDir('ca-faults-full-');
const stateDir = join(tmp.path, 'state');
let h: Harness;

beforeAll(async () => {
  mkdirSync(stateDir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', stateDir]);
  h = await startHarness(tmp.path, { config: { stateDir, pollInterval: 1 } });
});
afterAll(async () => {
  await h?.close();
  execFileSync('umount', [stateDir]);
  tmp.cleanup();
});

/** Take every free byte of the file system holding `dir`. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return path;
}

/** The state is self-consistent: the chain head is the last stored bundle, each bundle is queued, each check emission has its bundle. */
function expectConsistent(db: StateDb): number {
  expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  const head = readChainHead(db, h.config.hostId);
  const seqs = db.prepare('SELECT seq FROM evidence ORDER BY seq').pluck().all() as number[];
  expect(seqs).toEqual(Array.from({ length: head.seq }, (_, i) => i + 1));
  const unqueued = db.prepare("SELECT bundle_id FROM evidence e WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.bundle_id = e.bundle_id AND o.destination = 'mcp')").all();
  const orphanRows = db.prepare("SELECT bundle_id FROM outbox o WHERE destination = 'mcp' AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.bundle_id = o.bundle_id)").all();
  expect({ unqueued, orphanRows }).toEqual({ unqueued: [], orphanRows: [] });
  const unbacked = db
    .prepare(
      'SELECT check_name FROM check_results c WHERE last_emitted_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM evidence e WHERE e.check_name = c.check_name AND e.created_at = c.last_emitted_at)',
    )
    .all();
  expect(unbacked).toEqual([]);
  return head.seq;
}

it('a full state directory: clear error naming it, no corruption, nothing half-committed, recovery when space returns', async () => {
  const log: string[] = [];
  const rt = h.openAgent({ logger: createLogger('INFO', { write: (line: string) => void log.push(line) }) });
  await rt.agent.cycle();
  expect(rt.agent.pending()).toBe(0);
  const delivered = h.mcp.stats().unique;

  // The MCP goes away: evidence queues up on the disk that is about to fill.
  h.mcp.setFault('down');
  h.host.advance(60_000);
  h.host.stopService('postgresql.service');
  await rt.agent.cycle();
  const queuedBeforeFull = rt.agent.pending('mcp');
  expect(queuedBeforeFull).toBeGreaterThanOrEqual(2);

  const filler = fill(stateDir);
  const failures: AgentError[] = [];
  for (let i = 0; i < 8; i++) {
    // New evidence every cycle: the time check flips, heartbeats fall due.
    h.host.advance(h.config.heartbeatInterval * 1000);
    h.host.setNtpOffsetMs(i % 2 ? 9000 : 1);
    try {
      await rt.agent.cycle();
    } catch (e) {
      expect(e).toBeInstanceOf(AgentError);
      failures.push(e as AgentError);
    }
  }
  // A WAL page already allocated may take a small commit; evidence that needs new space cannot.
  expect(failures.length).toBeGreaterThanOrEqual(6);
  for (const f of failures) {
    expect(f.code).toBe('state_disk_full');
    expect(f.message).toContain(`state directory ${stateDir}`);
    expect(f.message).toMatch(/\((SQLITE_FULL|ENOSPC)\)/);
  }

  // The loop logs it as one line naming the directory and the cause.
  const stop = new AbortController();
  const running = rt.agent.run(stop.signal);
  while (!log.some((l) => l.includes('cycle failed'))) await new Promise((r) => setTimeout(r, 20));
  stop.abort();
  await running;
  const line = JSON.parse(log.find((l) => l.includes('cycle failed'))!) as { level: number; msg: string };
  expect(line.level).toBe(50);
  expect(line.msg).toMatch(new RegExp(`^cycle failed: state_disk_full: .*state directory ${stateDir}.*\\((SQLITE_FULL|ENOSPC)\\)`));
  await rt.close();

  // Restarted while still full: the database opens, is intact and self-consistent.
  {
    const db = openStateDb(stateLayout(stateDir).db);
    expectConsistent(db);
    db.close();
  }

  // Space returns (the MCP still down): the chain carries on and the outage alert is recorded.
  rmSync(filler);
  const again = h.openAgent();
  h.host.advance(60_000);
  await again.agent.cycle();
  expect(again.agent.pending('mcp')).toBeGreaterThan(queuedBeforeFull);
  h.mcp.setFault(null);
  h.host.advance(30 * 60_000);
  await again.agent.cycle();
  expect(again.agent.pending()).toBe(0);
  await again.close();

  const db = openStateDb(stateLayout(stateDir).db);
  const n = expectConsistent(db);
  db.close();
  // Everything queued before, during and after the full disk reached the MCP once, as one unbroken chain.
  const bundles = [...h.mcp.evidence().values()]
    .map((e) => {
      const v = verifyEnvelope(e.envelope, EVIDENCE_PAYLOAD_TYPE, [h.agentPublicKey]);
      if (!v.ok) throw new Error(v.message);
      return EvidenceBundleSchema.parse(JSON.parse(v.payload.toString('utf8')));
    })
    .sort((a, b) => a.seq - b.seq);
  expect(bundles.map((b) => b.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  expect(bundles.length).toBeGreaterThan(delivered + queuedBeforeFull);
  expect(h.mcp.stats().duplicates).toBe(0);
  // Outage alerts: when it began, again on the first cycle that could write (a heartbeat had passed
  // and the failed cycles never marked an alert as sent), and its end.
  expect(bundles.filter((b) => b.check === 'mcp').map((b) => b.outcome)).toEqual(['failed', 'failed', 'compliant']);
  const report = verifyPath(stateLayout(stateDir).evidence, [h.agentPublicKey]);
  expect(report.findings).toEqual([]);
  expect(report.hosts[0]).toMatchObject({ first: 1, last: n, count: n });
});
