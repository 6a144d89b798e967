import type { Readable } from 'node:stream';

/**
 * A response body read under a cap. `bytes` is what arrived, at most `cap` bytes; `overCap` says
 * the peer declared (nothing read) or sent more than the cap (the rest never read); `broken` is the error that cut the
 * body short (a reset, a timeout), null when it ended cleanly.
 */
export interface BoundedBody {
  readonly bytes: Buffer;
  readonly overCap: 'declared' | 'sent' | null;
  readonly broken: unknown;
}

/**
 * Reads a response body up to `cap` bytes. A declared length over the cap is refused unread, and
 * past the cap the stream is destroyed, which aborts the request and closes the connection: memory
 * stays bounded whatever the peer sends. Never throws: the caller decides what a cut body is worth.
 */
export async function readBoundedBody(body: Readable, cap: number, declaredLength?: string | string[]): Promise<BoundedBody> {
  if (Number(declaredLength ?? NaN) > cap) {
    body.destroy();
    return { bytes: Buffer.alloc(0), overCap: 'declared', broken: null };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (size + chunk.length > cap) {
        chunks.push(chunk.subarray(0, cap - size));
        body.destroy();
        return { bytes: Buffer.concat(chunks, cap), overCap: 'sent', broken: null };
      }
      chunks.push(chunk);
      size += chunk.length;
    }
  } catch (e) {
    return { bytes: Buffer.concat(chunks, size), overCap: null, broken: e };
  }
  return { bytes: Buffer.concat(chunks, size), overCap: null, broken: null };
}
