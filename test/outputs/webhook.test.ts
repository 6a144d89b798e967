import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { generatePki, type Pki } from '../../testing/index.js';
import { readWebhookSecret } from '../../src/config/index.js';
import { signWebhook, WebhookSink, type WebhookSinkOptions } from '../../src/outputs/index.js';
import { tempDir } from '../helpers/tmp.js';
import { EvidenceQueue } from './evidence-queue.js';
import { WebhookReceiver } from './webhook-receiver.js';
import { seeded } from '../helpers/fuzz.js';

const tmp = tempDir('ca-webhook-');
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
let pki: Pki;
let rx: WebhookReceiver;
let rogue: WebhookReceiver;
let secretFile: string;

beforeAll(async () => {
  pki = await generatePki(join(tmp.path, 'pki'));
  secretFile = join(tmp.path, 'webhook.secret');
  writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
  rx = await WebhookReceiver.start({ cert: pki.serverCert, key: pki.serverKey }, SECRET);
  rogue = await WebhookReceiver.start({ cert: pki.rogueServerCert, key: pki.rogueServerKey }, SECRET);
});

afterAll(async () => {
  await rx?.close();
  await rogue?.close();
  tmp.cleanup();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  rx.script.length = 0;
  for (const c of cleanups.splice(0).reverse()) await c();
});

let n = 0;
function queue(): EvidenceQueue {
  const dir = join(tmp.path, `q${n++}`);
  const q = new EvidenceQueue(dir);
  cleanups.push(() => q.close());
  return q;
}

function sink(opts: Partial<WebhookSinkOptions> = {}): WebhookSink {
  const s = new WebhookSink({
    // A token in the query, as some RMMs hand out: it must never reach a log or a dead-letter reason.
    url: `https://localhost:${rx.port}/hooks/compliance?token=SECRET-PATH-TOKEN`,
    secret: readWebhookSecret(secretFile),
    ca: readFileSync(pki.caCert),
    headersTimeoutMs: 1_000,
    requestTimeoutMs: 3_000,
    ...opts,
  });
  cleanups.push(() => s.close());
  return s;
}

function outboxRow(q: EvidenceQueue, bundleId: string) {
  return q.db.prepare(`SELECT state, attempts, receipt_id, last_error, dead_reason FROM outbox WHERE destination = 'webhook' AND bundle_id = ?`).get(bundleId) as {
    state: string;
    attempts: number;
    receipt_id: string | null;
    last_error: string | null;
    dead_reason: string | null;
  };
}

function deliveriesOf(ids: readonly string[]) {
  return rx.deliveries.filter((d) => ids.includes(d.headers['webhook-id']!));
}

describe('webhook signing', () => {
  it('produces exactly the signature of the standardwebhooks reference library', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 24, maxLength: 64 }), fc.uuid(), fc.integer({ min: 0, max: 4_000_000_000 }), fc.string({ unit: 'binary' }), (key, id, ts, body) => {
        const reference = new Webhook(Buffer.from(key).toString('base64')).sign(id, new Date(ts * 1000), body);
        expect(signWebhook(key, id, ts, body)).toBe(reference);
      }),
      seeded('webhook signature against standardwebhooks', { numRuns: 1000 }),
    );
  });
});

describe('webhook to an HTTPS receiver verifying with standardwebhooks', () => {
  it('posts a signed summary the library verifies, with webhook-id = bundle_id, and stores the receipt', async () => {
    const q = queue();
    const [e] = q.add(
      ['webhook'],
      [
        {
          check: 'patching',
          outcome: 'healed',
          reason: 'switched to the baseline revision',
          order_id: '6a1f3c2e-9d7b-4e8a-b1c0-2f4d5e6a7b8c',
          controls: ['HIPAA 164.308(a)(5)(ii)(B)', 'SOC 2 CC7.1'],
          pre_state: { generation: 41, note: 'PRE-STATE-MARKER' },
          post_state: { generation: 42, note: 'POST-STATE-MARKER' },
          action_taken: [{ command: 'nixos-rebuild', args: ['switch', '--flake', 'git+https://tok@git.example/site#app'], status: 'ok', exit_code: 0, duration_ms: 8123 }],
        },
      ],
    );
    const b = e!.bundle;
    const before = Math.floor(Date.now() / 1000);
    expect(await q.flush('webhook', sink().deliver)).toMatchObject({ delivered: 1, stoppedBy: 'drained' });

    const [d] = deliveriesOf([b.bundle_id]);
    expect(d).toMatchObject({ status: 200, refused: null });
    expect(d!.headers['webhook-id']).toBe(b.bundle_id);
    expect(Number(d!.headers['webhook-timestamp'])).toBeGreaterThanOrEqual(before);
    expect(d!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(d!.headers['content-type']).toBe('application/json');
    expect(d!.payload).toEqual({
      type: 'compliance.evidence',
      timestamp: b.timestamp_end,
      data: {
        bundle_id: b.bundle_id,
        seq: b.seq,
        site_id: 'clinic-001',
        host_id: 'appliance-1',
        reseller_id: 'msp-alpha',
        check: 'patching',
        outcome: 'healed',
        reason: 'switched to the baseline revision',
        controls: ['HIPAA 164.308(a)(5)(ii)(B)', 'SOC 2 CC7.1'],
        timestamp_start: b.timestamp_start,
        timestamp_end: b.timestamp_end,
        policy_version: '1.0',
        agent_version: b.agent_version,
        order_id: '6a1f3c2e-9d7b-4e8a-b1c0-2f4d5e6a7b8c',
        rollback_available: true,
        actions: [{ command: 'nixos-rebuild switch --flake [flake]', status: 'ok' }],
      },
    });
    expect(d!.body).not.toMatch(/MARKER|tok@/);
    expect(outboxRow(q, b.bundle_id)).toMatchObject({ state: 'done', receipt_id: `rcpt-${b.bundle_id}` });
  });

  it('a receiver holding another secret refuses the signature: dead letter with the status, not retried', async () => {
    const q = queue();
    const [a, b] = q.add(['webhook'], [{}, {}]);
    const other = `whsec_${randomBytes(32).toString('base64')}`;
    const otherFile = join(tmp.path, 'other.secret');
    writeFileSync(otherFile, other);
    expect(await q.flush('webhook', sink({ secret: readWebhookSecret(otherFile) }).deliver)).toMatchObject({ delivered: 0, dead: 2, stoppedBy: 'drained' });
    const ds = deliveriesOf([a!.bundle.bundle_id, b!.bundle.bundle_id]);
    expect(ds.map((d) => d.refused)).toEqual(['No matching signature found', 'No matching signature found']);
    const row = outboxRow(q, a!.bundle.bundle_id);
    expect(row.state).toBe('dead');
    expect(row.dead_reason).toBe(`webhook localhost:${rx.port} refused with 401: {"error":"No matching signature found"}`);
  });

  it('a message replayed after the tolerance window is refused by the library; a replay cannot refresh its timestamp', async () => {
    const q = queue();
    const [old] = q.add(['webhook'], [{}]);
    // What a capture taken ten minutes ago looks like when it is sent now.
    const tenMinutesAgo = sink({ now: () => Date.now() - 10 * 60_000 });
    expect(await q.flush('webhook', tenMinutesAgo.deliver)).toMatchObject({ dead: 1 });
    expect(deliveriesOf([old!.bundle.bundle_id])[0]!.refused).toBe('Message timestamp too old');
    expect(outboxRow(q, old!.bundle.bundle_id).dead_reason).toMatch(/refused with 401: .*Message timestamp too old/);

    const [fresh] = q.add(['webhook'], [{}]);
    await q.flush('webhook', sink().deliver);
    const genuine = deliveriesOf([fresh!.bundle.bundle_id])[0]!;
    expect(genuine.status).toBe(200);
    const replay = await rawPost(genuine.body, { ...genuine.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) + 1) });
    expect(replay).toBe(401);
    expect(rx.deliveries.at(-1)!.refused).toBe('No matching signature found');
  });

  it.each([
    [500, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [429, 'retry'],
    [408, 'retry'],
    [400, 'dead'],
    [404, 'dead'],
    [410, 'dead'],
    [301, 'dead'],
  ] as const)('status %i → %s', async (status, verdict) => {
    const q = queue();
    const [e] = q.add(['webhook'], [{}]);
    rx.script.push({ status, body: 'receiver says no' });
    await q.flush('webhook', sink().deliver);
    const row = outboxRow(q, e!.bundle.bundle_id);
    if (verdict === 'retry') {
      expect(row).toMatchObject({ state: 'pending', attempts: 1, last_error: `webhook localhost:${rx.port} answered ${status}: receiver says no` });
    } else {
      expect(row.state).toBe('dead');
      expect(row.dead_reason).toBe(
        `webhook localhost:${rx.port} refused with ${status}${status === 301 ? ' (redirects are not followed; correct rmmWebhookUrl)' : ''}: receiver says no`,
      );
    }
    expect(JSON.stringify(row)).not.toContain('SECRET-PATH-TOKEN');
  });

  it('keeps order: a retryable failure stops the batch and later items wait behind it', async () => {
    const q = queue();
    const bundles = q.add(['webhook'], [{}, {}, {}, {}]);
    const ids = bundles.map((b) => b.bundle.bundle_id);
    rx.script.push({ status: 200 }, { status: 503 });
    expect(await q.flush('webhook', sink().deliver)).toMatchObject({ delivered: 1, retried: 3, stoppedBy: 'retry' });
    expect(deliveriesOf(ids).map((d) => [d.headers['webhook-id'], d.status])).toEqual([
      [ids[0], 200],
      [ids[1], 503],
    ]);
    expect(outboxRow(q, ids[2]!)).toMatchObject({ state: 'pending', attempts: 0 });
    q.advance();
    expect(await q.flush('webhook', sink().deliver)).toMatchObject({ delivered: 3, stoppedBy: 'drained' });
    const accepted = deliveriesOf(ids)
      .filter((d) => d.status === 200)
      .map((d) => d.headers['webhook-id']);
    expect(accepted).toEqual(ids);
  });

  it('retries when the receiver is down, never answers, or shows a certificate from another CA', async () => {
    const q = queue();
    const [a] = q.add(['webhook'], [{}]);

    const down = await WebhookReceiver.start({ cert: pki.serverCert, key: pki.serverKey }, SECRET);
    const downPort = down.port;
    await down.close();
    await q.flush('webhook', sink({ url: `https://localhost:${downPort}/x` }).deliver);
    expect(outboxRow(q, a!.bundle.bundle_id).last_error).toBe(`webhook POST failed: connection to localhost:${downPort} refused (ECONNREFUSED)`);

    rx.script.push('hang');
    q.advance();
    await q.flush('webhook', sink({ headersTimeoutMs: 300 }).deliver);
    expect(outboxRow(q, a!.bundle.bundle_id)).toMatchObject({
      state: 'pending',
      attempts: 2,
      last_error: `webhook POST failed: localhost:${rx.port} sent no response headers within 300 ms (UND_ERR_HEADERS_TIMEOUT)`,
    });

    q.advance();
    await q.flush('webhook', sink({ url: `https://localhost:${rogue.port}/x` }).deliver);
    expect(outboxRow(q, a!.bundle.bundle_id)).toMatchObject({
      state: 'pending',
      attempts: 3,
      last_error: `webhook POST failed: TLS to localhost:${rogue.port} failed: server certificate is not signed by the CA in webhookCaFile (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    });
    expect(rogue.deliveries).toHaveLength(0);

    q.advance();
    expect(await q.flush('webhook', sink().deliver)).toMatchObject({ delivered: 1 });
  });

  it('reads at most the response cap from a receiver that floods its answer', async () => {
    const q = queue();
    const [e] = q.add(['webhook'], [{}]);
    rx.script.push('flood');
    expect(await q.flush('webhook', sink({ maxResponseBytes: 4096 }).deliver)).toMatchObject({ delivered: 1 });
    expect(outboxRow(q, e!.bundle.bundle_id)).toMatchObject({ state: 'done', receipt_id: e!.bundle.bundle_id });
  });

  it('dead-letters an outbox body that is not an evidence envelope instead of blocking the queue', async () => {
    const q = queue();
    q.outbox.enqueue('not-a-bundle', '{"payloadType":"x"', ['webhook'], q.clock);
    const [ok] = q.add(['webhook'], [{}]);
    expect(await q.flush('webhook', sink().deliver)).toMatchObject({ delivered: 1, dead: 1 });
    expect(q.outbox.deadLetters('webhook')[0]).toMatchObject({ bundleId: 'not-a-bundle', reason: 'outbox body is not JSON' });
    expect(outboxRow(q, ok!.bundle.bundle_id).state).toBe('done');
  });
});

/** POST raw bytes with chosen headers: what an attacker replaying a captured request can do. */
function rawPost(body: string, headers: Record<string, string>): Promise<number> {
  const { host: _host, 'content-length': _len, connection: _c, ...rest } = headers;
  return new Promise((resolve, reject) => {
    const req = request({ host: 'localhost', port: rx.port, path: '/hooks/compliance', method: 'POST', ca: readFileSync(pki.caCert), headers: rest }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}
