import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { isIPv6 } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { createHash, randomUUID } from 'node:crypto';
import {
  EnvelopeSchema,
  formatPublicKey,
  loadSecretKeyFile,
  publicKeyOf,
  randomSeed,
  resolvePublicKeyArg,
  type Envelope,
  type PublicKey,
  type SecretKey,
} from '../../src/crypto/index.js';
import { signReceipt, type Receipt } from '../../src/evidence/index.js';
import { describeError, type Logger } from '../../src/common/index.js';
import { EnrollmentAuthority, type EnrollmentOptions } from './enroll.js';
import { EvidenceStore, type StoredEvidence } from './evidence-store.js';
import { isResponseFault, sendFaultyResponse, type Fault, type ReceiptFault } from './faults.js';
import { readJsonBody } from './request-body.js';
import { generatePki, loadPki, type Pki } from '../pki.js';

export type { Fault, ReceiptFault } from './faults.js';

function freshKey(name: string): SecretKey {
  const seed = randomSeed();
  return { keyId: name, seed, publicKey: publicKeyOf(seed) };
}

const MAX_EVIDENCE_BODY = 1024 * 1024;
const MAX_BATCH_BODY = 16 * 1024 * 1024;
export const MAX_BATCH_ENVELOPES = 500;

export interface McpStats {
  /** Evidence envelopes posted, single or in a batch. */
  readonly posts: number;
  readonly unique: number;
  readonly duplicates: number;
  readonly rejected: number;
  readonly ordersServed: number;
  /** TCP connections accepted (keep-alive shows as few connections for many requests). */
  readonly connections: number;
  /** Body bytes written by response faults since the fault was set (how far a 100 MB body got). */
  readonly faultBytesSent: number;
  /** POST /evidence/batch requests answered by the batch endpoint. */
  readonly batchPosts: number;
  /** GET /orders/next requests. */
  readonly polls: number;
  readonly heartbeatsServed: number;
}

export interface ReferenceMcp {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  registerAgentKey(key: PublicKey): void;
  /** Served FIFO by GET /orders/next. */
  enqueueOrder(envelope: Envelope): void;
  evidence(): Map<string, StoredEvidence>;
  stats(): McpStats;
  setFault(f: Fault | null): void;
  /** POST /enroll, POST /renew, GET /identity and revocation, when started with `enrollment`. */
  readonly enrollment: EnrollmentAuthority | null;
  /** Turn the batch endpoint off (404, like an MCP without it) or on again. */
  setBatchEndpoint(on: boolean): void;
  /** The key that countersigns receipts, as the agent pins it (mcpReceiptKeys). */
  readonly receiptPublicKey: PublicKey;
  readonly receiptKeyText: string;
}

/**
 * Heartbeats: when no order is queued and `everyMs` has passed since the last one served (on
 * `now`), GET /orders/next serves `sign()`. The MSP signs them; a real MCP never holds the order
 * key, so the signer here stands for the MSP's side (a pre-signed heartbeat queue, or the MSP's
 * signing service), not for the MCP.
 */
export interface HeartbeatSource {
  readonly sign: () => Envelope;
  readonly everyMs: number;
  readonly now: () => number;
}

export interface ReferenceMcpOptions {
  readonly pki: Pki;
  /** 0 or absent: a free port. */
  readonly port?: number;
  readonly host?: string;
  readonly agentKeys?: PublicKey[];
  readonly logger?: Logger;
  /** false: answer 404 on POST /evidence/batch, like an MCP with only the single endpoint. */
  readonly batchEndpoint?: boolean;
  /** Serve enrollment with the PKI's CA: appliances without a certificate may then connect (for /enroll only). */
  readonly enrollment?: EnrollmentOptions;
  /** The MCP's receipt key; a fresh one when absent. */
  readonly receiptKey?: SecretKey;
  readonly heartbeat?: HeartbeatSource;
}

/** A receipt as the `receipts` fault makes it lie. */
function lyingReceipt(kind: ReceiptFault, receipt: Envelope, real: SecretKey, rogue: SecretKey): unknown {
  const payload = JSON.parse(Buffer.from(receipt.payload, 'base64').toString('utf8')) as Receipt;
  const sign = (r: Receipt, key: SecretKey) => signReceipt(r, key);
  switch (kind) {
    case 'other_bundle':
      return sign({ ...payload, bundle_id: randomUUID() }, real);
    case 'wrong_hash':
      return sign({ ...payload, envelope_hash: `sha256:${createHash('sha256').update('something else').digest('hex')}` }, real);
    case 'unsigned':
      return { ...receipt, signatures: [{ keyid: receipt.signatures[0]!.keyid, sig: '' }] };
    case 'wrong_key':
      return sign(payload, { ...rogue, keyId: receipt.signatures[0]!.keyid });
    case 'receipt_id_only':
      return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/** The reference MCP (docs/mcp-api.md): HTTPS with mandatory client certs from the PKI's CA. */
export async function startReferenceMcp(opts: ReferenceMcpOptions): Promise<ReferenceMcp> {
  const [key, cert, ca] = await Promise.all([readFile(opts.pki.serverKey), readFile(opts.pki.serverCert), readFile(opts.pki.caCert)]);
  const log = opts.logger;
  const receiptKey = opts.receiptKey ?? freshKey('mcp-receipts');
  const rogueKey = freshKey('mcp-rogue');
  const store = new EvidenceStore(receiptKey);
  let batchEndpoint = opts.batchEndpoint !== false;
  let batchPosts = 0;
  let polls = 0;
  let heartbeatsServed = 0;
  let lastHeartbeatAt: number | null = null;
  /** Held responses, cancelled by stop() so a 59-second hold never outlives the MCP. */
  const holds = new Set<NodeJS.Timeout>();
  const hold = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        holds.delete(t);
        resolve();
      }, ms);
      holds.add(t);
    });
  /** What goes back for one stored envelope: its receipt, or the lie a receipts fault tells. */
  const receiptBody = (receipt: Envelope, receiptId: string): Record<string, unknown> => {
    const f = fault;
    if (typeof f === 'object' && f !== null && 'receipts' in f) {
      const lie = lyingReceipt(f.receipts, receipt, receiptKey, rogueKey);
      return lie === undefined ? { receipt_id: receiptId } : { receipt: lie };
    }
    return { receipt };
  };
  for (const k of opts.agentKeys ?? []) store.registerKey(k);
  const authority = opts.enrollment ? await EnrollmentAuthority.create(opts.pki.caCert, opts.pki.caKey, (k) => store.registerKey(k), opts.enrollment) : null;
  const orders: Envelope[] = [];
  /** Raw TCP sockets by peer address, to reset them (TLS sockets cannot send an RST). */
  const sockets = new Map<string, Socket>();
  const peer = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string => `${s.remoteAddress ?? ''}:${s.remotePort ?? ''}`;
  let fault: Fault | null = null;
  let ordersServed = 0;
  let connections = 0;
  let faultBytesSent = 0;

  const respondFaulty = async (res: ServerResponse): Promise<boolean> => {
    if (!isResponseFault(fault)) return false;
    await sendFaultyResponse(
      res,
      fault,
      (n) => (faultBytesSent += n),
      () => {
        const raw = sockets.get(peer(res.socket ?? {}));
        if (raw) raw.resetAndDestroy();
        else res.destroy();
      },
    );
    return true;
  };

  const nextOrder = async (url: URL, res: ServerResponse): Promise<void> => {
    if (!url.searchParams.get('site_id') || !url.searchParams.get('host_id')) {
      sendJson(res, 400, { error: 'site_id and host_id are required' });
      return;
    }
    polls += 1;
    if (await respondFaulty(res)) return;
    if (fault === 'withhold_orders') {
      res.writeHead(204).end();
      return;
    }
    const hb = opts.heartbeat;
    if (orders.length === 0 && hb && (lastHeartbeatAt === null || hb.now() - lastHeartbeatAt >= hb.everyMs)) {
      lastHeartbeatAt = hb.now();
      heartbeatsServed += 1;
      orders.push(hb.sign());
    }
    const order = orders.shift();
    if (!order) {
      res.writeHead(204).end();
      return;
    }
    ordersServed += 1;
    sendJson(res, 200, order);
  };

  const postEvidence = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readJsonBody(req, MAX_EVIDENCE_BODY);
    if (!body.ok) {
      sendJson(res, body.status, { error: body.error }, body.status === 413);
      return;
    }
    const r = store.accept(body.json, Date.now());
    if (!r.ok) log?.warn({ reason: r.error }, 'reference MCP rejected an evidence envelope');
    if (await respondFaulty(res)) return;
    if (!r.ok) sendJson(res, r.status, { error: r.error });
    else sendJson(res, r.duplicate ? 200 : 201, receiptBody(r.receipt, r.receiptId));
  };

  const postBatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readJsonBody(req, MAX_BATCH_BODY);
    if (!body.ok) {
      sendJson(res, body.status, { error: body.error }, body.status === 413);
      return;
    }
    const envelopes = (body.json as { envelopes?: unknown } | null)?.envelopes;
    if (!Array.isArray(envelopes)) {
      sendJson(res, 400, { error: 'body must be {"envelopes": [...]}' });
      return;
    }
    if (envelopes.length > MAX_BATCH_ENVELOPES) {
      sendJson(res, 413, { error: `at most ${MAX_BATCH_ENVELOPES} envelopes per batch` });
      return;
    }
    const now = Date.now();
    const results = envelopes.map((e, index) => {
      const r = store.accept(e, now);
      if (r.ok) return receiptBody(r.receipt, r.receiptId);
      log?.warn({ index, reason: r.error }, 'reference MCP rejected an evidence envelope');
      return { index, error: r.error };
    });
    if (await respondFaulty(res)) return;
    sendJson(res, 200, { results });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const f = fault;
    if (typeof f === 'object' && f !== null && 'status' in f) {
      sendJson(res, f.status, { error: f.body ?? 'injected fault' });
      return;
    }
    if (typeof f === 'object' && f !== null && 'delayMs' in f) await hold(f.delayMs);
    if (typeof f === 'object' && f !== null && 'postDelayMs' in f && req.method === 'POST') await hold(f.postDelayMs);
    const url = new URL(req.url ?? '/', 'https://mcp.invalid');
    const route = `${req.method ?? ''} ${url.pathname}`;
    if (authority && (await authority.handle(req, res, route, sendJson))) return;
    if (route === 'GET /orders/next') return nextOrder(url, res);
    if (route === 'POST /evidence') return postEvidence(req, res);
    if (route === 'POST /evidence/batch' && batchEndpoint) {
      batchPosts += 1;
      return postBatch(req, res);
    }
    const known = ['/orders/next', '/evidence', ...(batchEndpoint ? ['/evidence/batch'] : [])];
    sendJson(res, known.includes(url.pathname) ? 405 : 404, { error: `no route for ${route}` });
  };

  // With enrollment, a client without a certificate gets through the handshake; the authority
  // then answers every route but /enroll with 401 (certificate_required).
  const server = createServer({ key, cert, ca, requestCert: true, rejectUnauthorized: !authority, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res).catch((e: unknown) => {
      log?.error({ err: describeError(e) }, 'reference MCP handler failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    if (fault === 'down') {
      s.resetAndDestroy();
      return;
    }
    connections += 1;
    const key = peer(s);
    sockets.set(key, s);
    s.on('close', () => sockets.delete(key));
  });
  server.on('tlsClientError', (e) => log?.debug({ err: e.message }, 'reference MCP: TLS client error'));

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  log?.info({ url }, 'reference MCP listening');

  return {
    url,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const t of holds) clearTimeout(t);
        for (const s of sockets.values()) s.destroy();
      }),
    registerAgentKey: (k) => store.registerKey(k),
    enqueueOrder: (e) => {
      orders.push(e);
    },
    evidence: () => store.byBundleId,
    enrollment: authority,
    stats: () => ({ ...store.counts, ordersServed, connections, faultBytesSent, batchPosts, polls, heartbeatsServed }),
    setBatchEndpoint: (on) => {
      batchEndpoint = on;
    },
    receiptPublicKey: { keyId: receiptKey.keyId, publicKey: receiptKey.publicKey },
    receiptKeyText: formatPublicKey(receiptKey.keyId, receiptKey.publicKey),
    setFault: (f) => {
      fault = f;
      faultBytesSent = 0;
      if (f === 'down') for (const s of sockets.values()) s.resetAndDestroy();
    },
  };
}

const USAGE =
  'usage: tsx testing/reference-mcp/server.ts [--pki DIR] [--host-id ID] [--port N] [--host H] [--agent-key name:base64|FILE]... [--order ENVELOPE.json]... [--receipt-key SECRET.key]\n' +
  '  --pki: where the PKI is kept or made (default $XDG_STATE_HOME/compliance-agent-reference-mcp/pki, outside any repository)\n' +
  "  --host-id: CN of the client certificate made with a new PKI, the agent's hostId (default appliance-1)\n" +
  "  --receipt-key: the MCP's receipt key (compliance-agent keygen); default a fresh one, printed for mcpReceiptKeys";

/** Outside the repository by default: the PKI holds the CA's private key. */
function defaultPkiDir(): string {
  const state = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'compliance-agent-reference-mcp', 'pki');
}

/** Standalone: serve until SIGINT/SIGTERM. Prints the URL as its first line of stdout. */
async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        pki: { type: 'string', default: defaultPkiDir() },
        'host-id': { type: 'string', default: 'appliance-1' },
        port: { type: 'string', default: '0' },
        host: { type: 'string', default: '127.0.0.1' },
        'agent-key': { type: 'string', multiple: true, default: [] },
        order: { type: 'string', multiple: true, default: [] },
        'receipt-key': { type: 'string' },
      },
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const existing = await loadPki(values.pki);
  const pki = existing ?? (await generatePki(values.pki, { clientCn: values['host-id'] }));
  process.stderr.write(`PKI in ${pki.dir}${existing ? '' : ` (new: client certificate CN = ${values['host-id']})`}\n`);
  const agentKeys = values['agent-key'].map(resolvePublicKeyArg);
  const receiptKey = values['receipt-key'] ? loadSecretKeyFile(values['receipt-key']) : undefined;
  const mcp = await startReferenceMcp({ pki, port: Number(values.port), host: values.host, agentKeys, ...(receiptKey ? { receiptKey } : {}) });
  for (const file of values.order) mcp.enqueueOrder(EnvelopeSchema.parse(JSON.parse(await readFile(file, 'utf8'))));
  process.stdout.write(`${mcp.url}\n`);
  process.stderr.write(`receipt key (mcpReceiptKeys): ${mcp.receiptKeyText}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await mcp.stop();
  const s = mcp.stats();
  process.stdout.write(`evidence: ${s.unique} unique, ${s.duplicates} duplicates, ${s.rejected} rejected; orders served: ${s.ordersServed}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`reference MCP: ${describeError(e)}\n`);
      process.exit(1);
    },
  );
}
