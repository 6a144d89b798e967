import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { type Harness, generatePki } from '../../testing/index.js';
import { tempDir } from '../helpers/tmp.js';
import { Rsyslog } from './rsyslog.js';
import { startResellerSite } from './reseller-site.js';
import { WebhookReceiver } from './webhook-receiver.js';

const tmp = tempDir('ca-dead-letters-cli-');
const AGENT_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const RMM_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
let h: Harness;
let rsyslog: Rsyslog;
let rmm: WebhookReceiver;
let secretFile: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }),
    );
  });
}

interface Bundle {
  bundle_id: string;
  seq: number;
  check: string;
  outcome: string;
  reason: string | null;
  pre_state: Record<string, unknown> | null;
}

function atMcp(): Bundle[] {
  return [...h.mcp.evidence().values()].map((e) => JSON.parse(Buffer.from(e.envelope.payload, 'base64').toString()) as Bundle).sort((a, b) => a.seq - b.seq);
}

/** Heartbeats every second: each `once` at least a second after the last has new evidence to send. */
async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1100));
}

/** Waits out the backoff of every pending item: a failed delivery is retried up to base * 2^failures later (full jitter). */
async function untilQueueDue(): Promise<void> {
  const db = new Database(join(h.config.stateDir, 'state.db'), { readonly: true, fileMustExist: true });
  try {
    const { last } = db.prepare(`SELECT max(next_attempt_at) AS last FROM outbox WHERE state = 'pending'`).get() as { last: number | null };
    const wait = (last ?? 0) - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait + 50));
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  rsyslog = await Rsyslog.start(join(tmp.path, 'rsyslog'));
  // The agent was given another secret than the RMM's: every webhook call is a 401.
  ({ h, secretFile } = await startResellerSite(tmp.path, AGENT_SECRET, rsyslog, { heartbeatInterval: 1 }));
  rmm = await WebhookReceiver.start({ cert: h.pki.serverCert, key: h.pki.serverKey }, RMM_SECRET);
  // The receiver's port is known only now; the webhook trusts the harness CA and nothing else.
  rewriteConfig({ rmmWebhookUrl: `https://localhost:${rmm.port}/rmm/hook`, webhookCaFile: h.pki.caCert });
});

function rewriteConfig(extra: Record<string, unknown>): void {
  const raw = JSON.parse(readFileSync(h.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(h.configPath, JSON.stringify({ ...raw, ...extra }));
}

afterAll(async () => {
  await rmm?.close();
  await h?.close();
  await rsyslog?.stop();
  tmp.cleanup();
});

describe('dead letters from the command line', () => {
  it('a 401 dead-letters with an alert and a non-zero once; replay after fixing the secret delivers everything once, in order; the replay is signed evidence', async () => {
    const first = await cli(['once', '--config', h.configPath]);
    expect(first.code).toBe(1);
    const refused = rmm.deliveries.filter((d) => d.status === 401).map((d) => d.headers['webhook-id']!);
    expect(refused).toHaveLength(6);
    expect(first.stdout).toContain('0 item(s) still queued, 6 dead-lettered (compliance-agent dead-letters list)');
    const logged = first.stdout
      .split('\n')
      .filter((l) => l.includes('"destination":"webhook"'))
      .map((l) => JSON.parse(l) as { level: number; kind: string; msg: string });
    expect(logged).toEqual([expect.objectContaining({ level: 50, kind: 'http_401' })]);
    expect(logged[0]!.msg).toMatch(/^webhook delivery failing: webhook localhost:\d+ refused with 401: .*; 6 bundle\(s\) dead-lettered, see compliance-agent dead-letters list$/);
    expect(first.stdout + first.stderr).not.toContain(AGENT_SECRET.slice(6));
    // The alert went to the MCP (and syslog), not to the webhook it is about.
    const alert = atMcp().find((b) => b.check === 'delivery')!;
    expect(alert).toMatchObject({ outcome: 'failed', pre_state: { event: 'dead_lettered', destination: 'webhook', count: 6 } });
    expect(rmm.deliveries.map((d) => d.headers['webhook-id'])).not.toContain(alert.bundle_id);

    const list = await cli(['dead-letters', 'list', '--config', h.configPath]);
    expect(list.code).toBe(0);
    const listed = list.stdout.trim().split('\n');
    expect(listed).toHaveLength(6);
    refused.forEach((id, i) =>
      expect(listed[i]).toMatch(new RegExp(`^#\\d+ webhook ${id} \\(seq \\d+, \\w+\\) dead since \\S+ after 1 attempt\\(s\\): webhook localhost:\\d+ refused with 401: `)),
    );
    const status = JSON.parse((await cli(['status', '--config', h.configPath, '--json'])).stdout) as {
      deadLetters: { bundleId: string; reason: string }[];
      delivery: { destination: string; state: string; kind: string | null; lastError: string | null }[];
    };
    expect(status.deadLetters.map((d) => d.bundleId)).toEqual(refused);
    expect(status.delivery.find((d) => d.destination === 'webhook')).toMatchObject({ state: 'failing', kind: 'http_401', lastError: expect.stringMatching(/refused with 401/) });

    // The operator fixes the secret, then replays.
    writeFileSync(secretFile, RMM_SECRET, { mode: 0o600 });
    const replay = await cli(['dead-letters', 'replay', '--config', h.configPath, '--destination', 'webhook', '--all', '--reason', 'rotated the RMM secret']);
    expect(replay.stderr).toBe('');
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(/^replayed 6 dead letter\(s\) for webhook \(#\d+, #\d+, #\d+, #\d+, #\d+, #\d+\)/);
    const pendingText = (await cli(['status', '--config', h.configPath])).stdout;
    expect(pendingText).toContain(`operator action not yet signed: replay of 6 dead letter(s) by ${userInfo().username} (uid ${process.getuid!()})`);
    expect(pendingText).toContain('dead letters: none');

    await nextSecond();
    const second = await cli(['once', '--config', h.configPath]);
    expect(second.stdout).toContain('0 item(s) still queued\n');
    expect(second.code).toBe(0);

    // Everything queued for the webhook arrived once, in chain order, the replayed bundles first.
    const accepted = rmm.deliveries.filter((d) => d.status === 200).map((d) => d.headers['webhook-id']!);
    expect(new Set(accepted).size).toBe(accepted.length);
    const forWebhook = atMcp().filter((b) => !(b.check === 'delivery' && b.pre_state?.event === 'dead_lettered'));
    expect(accepted).toEqual(forWebhook.map((b) => b.bundle_id));
    expect(accepted.slice(0, 6)).toEqual(refused);

    const replayed = atMcp().find((b) => b.pre_state?.event === 'dead_letters_replay')!;
    expect(replayed).toMatchObject({
      check: 'delivery',
      outcome: 'healed',
      pre_state: { operator: { user: userInfo().username, uid: process.getuid!() }, operator_reason: 'rotated the RMM secret', count: 6 },
    });
    expect((replayed.pre_state!.items as { bundle_id: string }[]).map((i) => i.bundle_id)).toEqual(refused);
    expect(replayed.reason).toMatch(new RegExp(`^${userInfo().username} \\(uid ${process.getuid!()}\\) replayed 6 dead-lettered bundle\\(s\\) for webhook`));
    expect(accepted).toContain(replayed.bundle_id);
    const after = JSON.parse((await cli(['status', '--config', h.configPath, '--json'])).stdout) as { operatorActionsAwaitingEvidence: unknown[]; deadLetters: unknown[] };
    expect(after).toMatchObject({ operatorActionsAwaitingEvidence: [], deadLetters: [] });
  });

  it('discard removes the dead letters and leaves signed evidence of who discarded what and why', async () => {
    for (let i = 0; i < 50; i++) rmm.script.push({ status: 422, body: 'unknown tenant' });
    await nextSecond();
    const failing = await cli(['once', '--config', h.configPath]);
    expect(failing.code).toBe(1);
    const dead = rmm.deliveries.filter((d) => d.status === 422).map((d) => d.headers['webhook-id']!);
    expect(dead.length).toBeGreaterThan(0);
    rmm.script.length = 0;

    const refusedAsUsage = await cli(['dead-letters', 'discard', '--config', h.configPath]);
    expect(refusedAsUsage.code).toBe(2);
    expect(refusedAsUsage.stderr).toContain('discard needs --id N (repeatable) or --all');
    const unknownId = await cli(['dead-letters', 'discard', '--config', h.configPath, '--id', '999999']);
    expect(unknownId.code).toBe(1);
    expect(unknownId.stderr).toContain('no dead letter with id 999999; nothing was changed');

    const discard = await cli(['dead-letters', 'discard', '--config', h.configPath, '--all', '--reason', 'RMM tenant deleted']);
    expect(discard.code).toBe(0);
    expect(discard.stdout).toMatch(new RegExp(`^discarded ${dead.length} dead letter\\(s\\) for webhook`));
    expect((await cli(['dead-letters', 'list', '--config', h.configPath])).stdout).toBe('no dead letters\n');

    await nextSecond();
    const recorded = await cli(['once', '--config', h.configPath]);
    expect(recorded.code).toBe(0);
    const evidence = atMcp().find((b) => b.pre_state?.event === 'dead_letters_discard')!;
    expect(evidence).toMatchObject({
      check: 'delivery',
      outcome: 'failed',
      pre_state: { operator: { user: userInfo().username, uid: process.getuid!() }, operator_reason: 'RMM tenant deleted', count: dead.length },
    });
    expect((evidence.pre_state!.items as { bundle_id: string; dead_reason: string }[]).map((i) => [i.bundle_id, i.dead_reason])).toEqual(
      dead.map((id): [string, unknown] => [id, expect.stringMatching(/refused with 422: unknown tenant$/)]),
    );
    expect(evidence.reason).toMatch(/discarded \d+ dead-lettered bundle\(s\) for webhook: discarded \(they will never be delivered there\); reason given: RMM tenant deleted$/);
    // The discarded bundles are still in the signed chain at the MCP.
    for (const id of dead) expect(atMcp().some((b) => b.bundle_id === id)).toBe(true);
  });

  it('with webhookCaFile set, a receiver certified by another CA is refused even when Node would trust that CA', async () => {
    const other = await generatePki(join(tmp.path, 'other-pki'), { serverNames: ['localhost'] });
    const rogue = await WebhookReceiver.start({ cert: other.serverCert, key: other.serverKey }, RMM_SECRET);
    try {
      rewriteConfig({ rmmWebhookUrl: `https://localhost:${rogue.port}/rmm/hook` });
      await nextSecond();
      const pinned = await cli(['once', '--config', h.configPath], { NODE_EXTRA_CA_CERTS: other.caCert });
      expect(pinned.code).toBe(1);
      expect(rogue.deliveries).toEqual([]);
      expect(pinned.stdout).toMatch(new RegExp(`server certificate is not signed by the CA in ${h.pki.caCert}`));

      // Unset, Node's roots (here with the other CA added the standard way) decide.
      rewriteConfig({ webhookCaFile: null });
      await untilQueueDue();
      const unpinned = await cli(['once', '--config', h.configPath], { NODE_EXTRA_CA_CERTS: other.caCert });
      expect(unpinned.stdout).toContain('0 item(s) still queued');
      expect(unpinned.code).toBe(0);
      expect(rogue.deliveries.filter((d) => d.status === 200).length).toBeGreaterThan(0);
    } finally {
      rewriteConfig({ rmmWebhookUrl: `https://localhost:${rmm.port}/rmm/hook`, webhookCaFile: h.pki.caCert });
      await rogue.close();
    }
  });
});
