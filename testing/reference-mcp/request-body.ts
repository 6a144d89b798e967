import type { IncomingMessage } from 'node:http';

export type BodyRead = { readonly ok: true; readonly json: unknown } | { readonly ok: false; readonly status: 400 | 413; readonly error: string };

/**
 * Reads a JSON request body, refusing one larger than `limit` bytes without buffering it. On 413
 * the rest of the body is left unread: the caller answers with `connection: close`.
 */
export function readJsonBody(req: IncomingMessage, limit: number): Promise<BodyRead> {
  const tooLarge: BodyRead = { ok: false, status: 413, error: `request body over ${limit} bytes` };
  if (Number(req.headers['content-length'] ?? '0') > limit) return Promise.resolve(tooLarge);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData).off('end', onEnd);
      req.pause();
      chunks.length = 0;
      resolve(tooLarge);
    };
    const onEnd = (): void => {
      try {
        resolve({ ok: true, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      } catch {
        resolve({ ok: false, status: 400, error: 'request body is not JSON' });
      }
    };
    req
      .on('data', onData)
      .on('end', onEnd)
      .on('error', () => resolve({ ok: false, status: 400, error: 'request body was cut off' }));
  });
}
