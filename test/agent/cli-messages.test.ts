import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../../testing/index.js';
import { ORDER_PAYLOAD_TYPE, EVIDENCE_PAYLOAD_TYPE, signEnvelope } from '../../src/crypto/index.js';
import { makeKey } from '../orders/fixtures.js';
import { tempDir } from '../helpers/tmp.js';

// What a user sees: the exit code and the one line each command prints, run as the real CLI.

const tmp = tempDir('ca-cli-msg-');
let h: Harness;
const CLI = ['--import', 'tsx', 'src/cli.ts'];

beforeAll(async () => {
  h = await startHarness(join(tmp.path, 'site'));
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Async: the reference MCP lives in this process. `timeout` kills a command that spins. */
function cli(args: string[], timeout = 60_000): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { encoding: 'utf8', timeout, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The config of the harness with other settings, in a file of its own. */
function configWith(name: string, overrides: Record<string, unknown>): string {
  const raw = JSON.parse(readFileSync(h.configPath, 'utf8')) as Record<string, unknown>;
  const path = join(tmp.path, `${name}.json`);
  writeFileSync(path, JSON.stringify({ ...raw, ...overrides }));
  return path;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.length > 0);
}

describe('before the agent first ran', () => {
  it('status: exit 0 and one line saying there is no state yet (JSON too)', async () => {
    const config = configWith('fresh', { stateDir: join(tmp.path, 'fresh-state') });
    const r = await cli(['status', '--config', config]);
    expect([r.status, lines(r.stdout), r.stderr]).toEqual([0, [`no state yet: the agent has not run (${join(tmp.path, 'fresh-state')}/state.db does not exist)`], '']);
    const j = await cli(['status', '--config', config, '--json']);
    expect(j.status).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ state: null, stateDb: `${join(tmp.path, 'fresh-state')}/state.db` });
  });

  it('prune: exit 0 and one line, nothing created', async () => {
    const config = configWith('fresh-prune', { stateDir: join(tmp.path, 'fresh-prune-state') });
    const r = await cli(['prune', '--config', config]);
    expect([r.status, lines(r.stdout), r.stderr]).toEqual([
      0,
      [`nothing to prune: no state yet: the agent has not run (${join(tmp.path, 'fresh-prune-state')}/state.db does not exist)`],
      '',
    ]);
    expect(() => statSync(join(tmp.path, 'fresh-prune-state'))).toThrow();
  });
});

describe('directories that cannot be used', () => {
  it('stateDir pointing at a file: once, status and prune print one clear line, no raw EEXIST', async () => {
    const file = join(tmp.path, 'a-file');
    writeFileSync(file, 'not a directory');
    const config = configWith('state-file', { stateDir: file });
    const once = await cli(['once', '--config', config]);
    expect(once.status).toBe(1);
    expect(lines(once.stderr)).toEqual([`error: not_a_directory: stateDir ${file}: ${file} exists and is not a directory`]);
    for (const cmd of ['status', 'prune']) {
      const r = await cli([cmd, '--config', config]);
      expect([r.status, lines(r.stderr)]).toEqual([1, [`error: ${file}: stateDir is not a directory`]]);
    }
  });

  it('stateDir under /proc: once fails at once with one line instead of spinning', async () => {
    for (const [stateDir, first] of [
      ['/proc/x', '/proc/x'],
      ['/proc/nonexistent/state', '/proc/nonexistent'],
    ]) {
      const r = await cli(['once', '--config', configWith('state-proc', { stateDir })], 20_000);
      expect(r.status).toBe(1);
      expect(lines(r.stderr)).toEqual([`error: dir_create: stateDir ${stateDir}: cannot create ${first} (the file system refuses new entries there, ENOENT)`]);
    }
  });

  it('keygen NAME FILE: one clear line, exit 1', async () => {
    const file = join(tmp.path, 'keys-file');
    writeFileSync(file, '');
    const r = await cli(['keygen', 'x', file]);
    expect([r.status, lines(r.stderr), r.stdout]).toEqual([1, [`error: not_a_directory: key directory ${file}: ${file} exists and is not a directory`], '']);
  });

  it('keygen x /proc/nonexistent/dir: one clear line, no spin', async () => {
    const r = await cli(['keygen', 'x', '/proc/nonexistent/dir'], 20_000);
    expect([r.status, lines(r.stderr)]).toEqual([
      1,
      ['error: dir_create: key directory /proc/nonexistent/dir: cannot create /proc/nonexistent (the file system refuses new entries there, ENOENT)'],
    ]);
  });

  it('state.db and its WAL are created 0600 in a stateDir that is 0755, and the directory keeps its mode', async () => {
    const dir = join(tmp.path, 'wide-state');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const config = configWith('wide', { stateDir: dir });
    const r = await cli(['once', '--config', config]);
    expect(r.stderr).not.toMatch(/error/);
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    const dbFiles = readdirSync(dir).filter((f) => f.startsWith('state.db'));
    expect(dbFiles).toContain('state.db');
    for (const f of dbFiles) expect({ f, mode: (statSync(join(dir, f)).mode & 0o777).toString(8) }).toEqual({ f, mode: '600' });
  });
});

describe('verify', () => {
  it('an empty directory: exit 1 and exactly one line', async () => {
    const dir = join(tmp.path, 'empty-evidence');
    mkdirSync(dir);
    const r = await cli(['verify', dir, '--pubkey', h.agentPublicKeyText]);
    expect([r.status, lines(r.stdout), r.stderr]).toEqual([1, [`FAIL: no evidence envelopes (*.json) found in ${dir}`], '']);
  });

  it('a tampered bundle is reported once, as bad_signature, not also as a gap', async () => {
    const rt = h.openAgent();
    await rt.agent.cycle();
    await rt.close();
    const src = join(h.config.stateDir, 'evidence');
    const dir = join(tmp.path, 'tampered');
    mkdirSync(dir);
    const files = readdirSync(src).sort();
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) copyFileSync(join(src, f), join(dir, f));
    const victim = files[1]!;
    const env = JSON.parse(readFileSync(join(dir, victim), 'utf8')) as { payload: string };
    const bundle = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')) as Record<string, unknown>;
    env.payload = Buffer.from(JSON.stringify({ ...bundle, outcome: 'compliant', reason: 'nothing to see' })).toString('base64');
    writeFileSync(join(dir, victim), JSON.stringify(env));
    const r = await cli(['verify', dir, '--pubkey', h.agentPublicKeyText]);
    expect(r.status).toBe(1);
    const fails = lines(r.stdout).filter((l) => l.startsWith('FAIL '));
    expect(fails).toEqual([`FAIL bad_signature: ${victim}: signature does not verify (tampered or signed by another key)`]);
    expect(lines(r.stdout).at(-1)).toBe(`FAILED: 1 problem(s), ${files.length - 1} envelope(s) verified`);
  });
});

/** The CLI on a pseudo-terminal (util-linux `script`): what a user at a terminal sees, stdout and stderr merged. */
function onTerminal(args: string[]): Promise<{ status: number | null; output: string }> {
  const command = [process.execPath, ...CLI, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return new Promise((resolve) => {
    execFile('script', ['-qefc', `stty cols 300; ${command}`, '/dev/null'], { encoding: 'utf8', timeout: 60_000 }, (error, stdout) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, output: stdout });
    });
  });
}

describe('progress on a terminal, quiet otherwise', () => {
  it('once with a backlog, verify of a directory, prune: one rewritten stderr line on a terminal; nothing on a pipe or with --json', async () => {
    h.mcp.setFault('down');
    const rt = h.openAgent();
    for (let i = 0; i < 3; i++) await rt.agent.cycle();
    const backlog = rt.agent.pending();
    await rt.close();
    h.mcp.setFault(null);
    expect(backlog).toBeGreaterThan(0);

    const once = await onTerminal(['once', '--config', h.configPath]);
    expect(once.status).toBe(0);
    expect(once.output).toContain(`\r\u001b[Konce: ${backlog} item(s) were queued; polling, checking, flushing:`);
    expect(once.output).toMatch(/\r\u001b\[Kcycle: poll \w+, \d+ bundle\(s\) created, 0 item\(s\) still queued/);

    const evidence = join(h.config.stateDir, 'evidence');
    const n = readdirSync(evidence).length;
    const verify = await onTerminal(['verify', evidence, '--pubkey', h.agentPublicKeyText]);
    expect(verify.status).toBe(0);
    expect(verify.output).toContain(`\r\u001b[Kverifying ${n}/${n} envelope(s) in ${evidence}\r\u001b[K`);
    expect(verify.output).toContain(`OK: ${n} envelope(s) verified, chain intact`);
    const piped = await cli(['verify', evidence, '--pubkey', h.agentPublicKeyText]);
    expect([piped.status, piped.stderr]).toEqual([0, '']);
    const json = await onTerminal(['verify', evidence, '--pubkey', h.agentPublicKeyText, '--json']);
    expect(json.output).not.toContain('verifying');
    expect((JSON.parse(json.output) as { verified: number }).verified).toBe(n);

    const prune = await onTerminal(['prune', '--config', h.configPath]);
    expect(prune.status).toBe(0);
    expect(prune.output).toContain(`\r\u001b[Kpruning the evidence in ${evidence} and delivered queue rows\r\u001b[Kpruned `);
    const prunePiped = await cli(['prune', '--config', h.configPath]);
    expect([prunePiped.status, prunePiped.stderr]).toEqual([0, '']);
  });
});

describe('status', () => {
  it('counts every rejected order by reason, as many as the rejection evidence', async () => {
    const stranger = makeKey('msp-orders-2026');
    const good = h.signOrder('run_checks', {});
    const raw = (payload: Record<string, unknown>, type = ORDER_PAYLOAD_TYPE) => signEnvelope(type, Buffer.from(JSON.stringify(payload)), h.orderKey);
    const base = JSON.parse(Buffer.from(good.payload, 'base64').toString('utf8')) as Record<string, unknown>;
    const fresh = (over: Record<string, unknown>) => ({ ...base, order_id: randomUUID(), sequence: (base.sequence as number) + 100, ...over });
    const bad = [
      good, // accepted; the same envelope again is a replay
      good,
      signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from(JSON.stringify(fresh({}))), stranger.secret), // a look-alike key: bad_signature
      signEnvelope(ORDER_PAYLOAD_TYPE, Buffer.from(JSON.stringify(fresh({}))), makeKey('someone').secret), // unknown_key
      raw(fresh({}), EVIDENCE_PAYLOAD_TYPE), // wrong_payload_type
      raw(fresh({ type: 'shell', params: { cmd: 'id' } })), // unknown_type
      raw(fresh({ type: 'heal', params: { checks: ['nope'] } })), // bad_params
      raw(fresh({ site_id: 'clinic-999' })), // wrong_site
      raw(fresh({ sequence: 0 })), // stale_sequence
    ];
    for (const e of bad) h.mcp.enqueueOrder(e);
    const rt = h.openAgent();
    for (let i = 0; i < bad.length; i++) await rt.agent.cycle();
    await rt.close();
    const r = await cli(['status', '--config', h.configPath]);
    expect(r.status).toBe(0);
    const db = new Database(join(h.config.stateDir, 'state.db'), { readonly: true });
    const evidence = db.prepare("SELECT COUNT(*) AS n FROM evidence WHERE check_name = 'order' AND outcome = 'rejected'").get() as { n: number };
    db.close();
    expect(evidence.n).toBe(8);
    expect(lines(r.stdout).find((l) => l.startsWith('orders:'))).toBe(
      'orders:      1 accepted, 8 rejected (bad_params 1, bad_signature 1, replayed 1, stale_sequence 1, unknown_key 1, unknown_type 1, wrong_payload_type 1, wrong_site 1), last sequence ' +
        String(base.sequence),
    );
    const json = JSON.parse((await cli(['status', '--config', h.configPath, '--json'])).stdout) as { orders: { rejected: number } };
    expect(json.orders.rejected).toBe(8);
  });

  it('ages are never negative after the clock stepped back', async () => {
    const future = Date.now() + 3 * 86_400_000;
    const db = new Database(join(h.config.stateDir, 'state.db'));
    db.prepare('UPDATE check_results SET checked_at = ?').run(future);
    db.prepare("UPDATE kv SET value = json_set(value, '$.at', ?) WHERE key = 'last_poll'").run(future);
    db.prepare("UPDATE outbox SET state = 'pending', created_at = ? WHERE id = (SELECT MIN(id) FROM outbox)").run(future);
    db.close();
    const r = await cli(['status', '--config', h.configPath]);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/-\d+[smhd]\b/);
    expect(r.stdout).toMatch(/last poll: {3}\S+ \(0s ago\)/);
    expect(r.stdout).toMatch(/oldest 0s/);
    const json = JSON.parse((await cli(['status', '--config', h.configPath, '--json'])).stdout) as { queue: { oldestPendingAgeMs: number | null }[] };
    expect(json.queue.every((q) => q.oldestPendingAgeMs === null || q.oldestPendingAgeMs >= 0)).toBe(true);
  });
});
