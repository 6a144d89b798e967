import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { readBoundedBody } from './bounded-body.js';
import { describeTransportError, type Peer, type TransportFailure } from './transport-error.js';
import { Agent } from './undici-agent.js';

/** Every limit of one exchange, in milliseconds. */
export interface HttpsTimeouts {
  /** TCP connect plus TLS handshake. */
  readonly connectMs: number;
  /** Request sent → response headers received. */
  readonly headersMs: number;
  /** Longest silence between response body chunks. */
  readonly bodyMs: number;
  /** Whole exchange, so a peer dripping a byte just inside bodyMs still ends. */
  readonly requestMs: number;
}

/**
 * What the server certificate must chain to. A pinned CA replaces Node's bundled roots, the
 * system's and NODE_EXTRA_CA_CERTS: only that CA is trusted. `node-roots` is Node's default trust.
 */
export type HttpsTrust = { readonly ca: string | Buffer; readonly caFile: string } | 'node-roots';

export interface HttpsClientOptions {
  /** The https origin dialled; requests give the path. */
  readonly origin: string;
  readonly trust: HttpsTrust;
  /** The client identity presented (mTLS). */
  readonly client?: { readonly cert: Buffer; readonly key: Buffer; readonly certFile: string; readonly notAfter: Date };
  readonly timeouts: HttpsTimeouts;
  /** Largest response body read; more is cut off while streaming and the connection closed. */
  readonly maxResponseBytes: number;
  /** Connections kept to the origin. */
  readonly connections: number;
  /** How long an idle keep-alive connection is kept (default 10 s), and the most a server's keep-alive hint may ask. */
  readonly keepAliveMs?: number;
  readonly keepAliveMaxMs?: number;
}

export interface HttpsRequest {
  readonly method: 'GET' | 'POST';
  /** Path and query. */
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
  /** Aborts the exchange in flight (besides the request timeout). */
  readonly signal?: AbortSignal;
  /** The request as failure messages name it (`POST /evidence`); never a path that may carry a token. */
  readonly shownAs: string;
}

export type HttpsFailure = TransportFailure | { readonly code: 'too_large'; readonly message: string };

export interface HttpsResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * The whole response, or what failed. A failure after the headers (a body over the cap, a
 * connection that broke mid-body) still carries the response: its status and the body as read.
 */
export type HttpsOutcome = { readonly ok: true; readonly response: HttpsResponse } | { readonly ok: false; readonly failure: HttpsFailure; readonly response?: HttpsResponse };

/**
 * The one HTTPS client setup of the agent (MCP and RMM webhook): undici's pool with the trust
 * given, TLS 1.2 at least, SNI for a DNS name, connect/headers/body/request timeouts and a response
 * cap enforced while streaming. Redirects are never followed (no redirect handling is installed):
 * a 3xx is an answer like any other. It never throws for a failed exchange: every failure is a
 * value with one line that names the peer and, never, a secret.
 */
export class HttpsClient {
  private readonly dispatcher: Agent;
  private readonly peer: Peer;
  private readonly hostPort: string;

  constructor(private readonly opts: HttpsClientOptions) {
    const url = new URL(opts.origin);
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    this.hostPort = `${url.hostname}:${url.port || '443'}`;
    const t = opts.timeouts;
    this.peer = {
      name: this.hostPort,
      hostname,
      trust: opts.trust === 'node-roots' ? 'a public CA Node trusts' : `the CA in ${opts.trust.caFile}`,
      ...(opts.client ? { clientCert: { file: opts.client.certFile, notAfter: opts.client.notAfter } } : {}),
      timeouts: t,
    };
    this.dispatcher = new Agent({
      connect: {
        ...(opts.trust === 'node-roots' ? {} : { ca: opts.trust.ca }),
        ...(opts.client ? { cert: opts.client.cert, key: opts.client.key } : {}),
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
        timeout: t.connectMs,
        // SNI carries DNS names only (RFC 6066); an IP is checked against the cert's IP SANs.
        ...(isIP(hostname) ? {} : { servername: hostname }),
      },
      headersTimeout: t.headersMs,
      bodyTimeout: t.bodyMs,
      keepAliveTimeout: opts.keepAliveMs ?? 10_000,
      ...(opts.keepAliveMaxMs === undefined ? {} : { keepAliveMaxTimeout: opts.keepAliveMaxMs }),
      connections: opts.connections,
    });
  }

  /** host:port as dialled, as every message names the peer. */
  get endpoint(): string {
    return this.hostPort;
  }

  async request(req: HttpsRequest): Promise<HttpsOutcome> {
    const timeout = AbortSignal.timeout(this.opts.timeouts.requestMs);
    try {
      const res = await this.dispatcher.request({
        origin: this.opts.origin,
        path: req.path,
        method: req.method,
        headers: req.headers,
        ...(req.body === undefined ? {} : { body: req.body }),
        signal: req.signal ? AbortSignal.any([timeout, req.signal]) : timeout,
      });
      const cap = this.opts.maxResponseBytes;
      const read = await readBoundedBody(res.body, cap, res.headers['content-length']);
      const response: HttpsResponse = { status: res.statusCode, headers: res.headers, body: read.bytes };
      if (read.overCap) {
        const what = read.overCap === 'declared' ? `declares ${String(res.headers['content-length'])} bytes` : `sent more than ${cap} bytes`;
        return { ok: false, failure: { code: 'too_large', message: `${this.hostPort} response to ${req.shownAs} ${what}, over the ${cap}-byte cap; aborted` }, response };
      }
      if (read.broken !== null) return { ok: false, failure: describeTransportError(read.broken, this.peer), response };
      return { ok: true, response };
    } catch (e) {
      return { ok: false, failure: describeTransportError(e, this.peer) };
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
