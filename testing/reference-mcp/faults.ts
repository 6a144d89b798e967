import type { ServerResponse } from 'node:http';

/**
 * Faults the reference MCP can inject, for tests and the demo:
 * - 'down': every TCP connection is reset at once (existing ones too), like a dead MCP behind a
 *   load balancer; the port stays bound so the MCP can come back on the same URL.
 * - { status }: every request is answered with that status and `{"error": body}`, nothing stored.
 * - 'reset_mid_body', { slowDripMs }, { hugeBodyBytes }, 'invalid_json': the request is processed
 *   (evidence stored, orders not dequeued) and the 200 response is lost in that way, so a client
 *   retry tests idempotency.
 * - { delayMs }: the response (processed normally) is held back that long.
 * - { postDelayMs }: only evidence posts are held back that long (polls are answered at once).
 * - 'withhold_orders': GET /orders/next answers 204 whatever is queued (a relay freezing orders).
 * - { receipts }: evidence is stored, but the receipts sent back lie: they name another bundle
 *   ('other_bundle'), another envelope hash ('wrong_hash'), carry no valid signature ('unsigned'),
 *   are signed by a key the agent does not pin ('wrong_key'), or are the bare receipt_id of the
 *   old protocol ('receipt_id_only').
 */
export type ReceiptFault = 'other_bundle' | 'wrong_hash' | 'unsigned' | 'wrong_key' | 'receipt_id_only';

export type Fault =
  | 'down'
  | 'reset_mid_body'
  | 'invalid_json'
  | { readonly status: number; readonly body?: string }
  | { readonly slowDripMs: number }
  | { readonly hugeBodyBytes: number; readonly declareLength?: boolean }
  | { readonly delayMs: number }
  | { readonly postDelayMs: number }
  | 'withhold_orders'
  | { readonly receipts: ReceiptFault };

/** Faults that replace a processed request's response. */
export type ResponseFault = Extract<Fault, 'reset_mid_body' | 'invalid_json' | { slowDripMs: number } | { hugeBodyBytes: number }>;

export function isResponseFault(f: Fault | null): f is ResponseFault {
  return f === 'reset_mid_body' || f === 'invalid_json' || (typeof f === 'object' && f !== null && ('slowDripMs' in f || 'hugeBodyBytes' in f));
}

const HUGE_CHUNK = Buffer.alloc(64 * 1024, 0x20);

/**
 * Sends the faulty response, reporting body bytes as they are written; resolves when the exchange
 * is over. `reset` sends a TCP RST on the connection (the TLS socket itself cannot).
 */
export function sendFaultyResponse(res: ServerResponse, fault: ResponseFault, sent: (bytes: number) => void, reset: () => void): Promise<void> {
  return new Promise((resolve) => {
    res.on('close', resolve);
    const write = (chunk: string | Buffer): boolean => {
      sent(Buffer.byteLength(chunk));
      return res.write(chunk);
    };
    if (fault === 'invalid_json') {
      const body = '{"receipt_id": "rcpt-trunc';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      write(body);
      res.end();
      return;
    }
    if (fault === 'reset_mid_body') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 4096 });
      const part = '{"receipt_id": "rcpt-';
      sent(part.length);
      // Reset once the headers and the first body bytes have left.
      res.write(part, reset);
      return;
    }
    if ('slowDripMs' in fault) {
      res.writeHead(200, { 'content-type': 'application/json' });
      write('{');
      const timer = setInterval(() => write(' '), fault.slowDripMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const total = fault.hugeBodyBytes;
    let written = 0;
    res.writeHead(200, fault.declareLength ? { 'content-type': 'application/json', 'content-length': total } : { 'content-type': 'application/json' });
    // Write only when the socket drains, so the MCP itself stays small while streaming 100 MB.
    const pump = (): void => {
      while (written < total && !res.destroyed) {
        const chunk = HUGE_CHUNK.subarray(0, Math.min(HUGE_CHUNK.length, total - written));
        written += chunk.length;
        if (!write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (written >= total) res.end();
    };
    pump();
  });
}
