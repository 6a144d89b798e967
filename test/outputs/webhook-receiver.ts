import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Delivery {
  readonly headers: Record<string, string>;
  readonly body: string;
  /** What the receiver answered. */
  readonly status: number;
  /** Webhook.verify's error when the signature or timestamp was refused. */
  readonly refused: string | null;
  readonly payload: unknown;
}

/** How the receiver treats the next request: answer with a status, never answer, or flood. */
export type Behaviour = { status: number; body?: string } | 'hang' | 'flood';

/**
 * An RMM stand-in: node https with a generated certificate, verifying every request with the
 * `standardwebhooks` reference library (signature and its 5-minute timestamp tolerance) and
 * deduplicating by webhook-id as the spec asks receivers to.
 */
export class WebhookReceiver {
  readonly deliveries: Delivery[] = [];
  readonly accepted = new Map<string, unknown>();
  /** Behaviour for coming requests, consumed in order; when empty, verified requests get 200. */
  readonly script: Behaviour[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly verifier: Webhook;

  private constructor(
    private readonly server: Server,
    secret: string,
  ) {
    this.verifier = new Webhook(secret);
  }

  static start(tls: { cert: string; key: string }, secret: string): Promise<WebhookReceiver> {
    return WebhookReceiver.startOn(0, tls, secret);
  }

  /** Listen on a given port (a receiver coming back where it was). */
  static async startOn(port: number, tls: { cert: string; key: string }, secret: string): Promise<WebhookReceiver> {
    const server = createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, (req, res) => void self.handle(req, res));
    const self = new WebhookReceiver(server, secret);
    server.on('connection', (s: Socket) => {
      self.sockets.add(s);
      s.on('close', () => self.sockets.delete(s));
    });
    // All addresses, so https://localhost works whichever family localhost resolves to first.
    server.listen(port);
    await once(server, 'listening');
    return self;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    const behaviour = this.script.shift();
    if (behaviour === 'hang') {
      this.deliveries.push({ headers, body, status: 0, refused: null, payload: null });
      return;
    }
    let payload: unknown = null;
    let refused: string | null = null;
    try {
      payload = this.verifier.verify(body, headers);
    } catch (e) {
      refused = (e as Error).message;
    }
    if (refused) {
      this.deliveries.push({ headers, body, status: 401, refused, payload: null });
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: refused }));
      return;
    }
    if (behaviour === 'flood') {
      this.deliveries.push({ headers, body, status: 200, refused: null, payload });
      this.accepted.set(headers['webhook-id']!, payload);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(1024 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < 64 && res.write(chunk)) sent++;
        if (sent >= 64) res.end();
        else res.once('drain', pump);
      };
      res.on('error', () => undefined);
      pump();
      return;
    }
    const status = behaviour?.status ?? 200;
    this.deliveries.push({ headers, body, status, refused: null, payload });
    if (status >= 200 && status < 300) this.accepted.set(headers['webhook-id']!, payload);
    res.writeHead(status, { 'content-type': 'application/json' }).end(behaviour?.body ?? JSON.stringify({ id: `rcpt-${headers['webhook-id']}` }));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
