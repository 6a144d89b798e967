import type { Readable } from 'node:stream';

export type CappedRead = { readonly ok: true; readonly bytes: Buffer } | { readonly ok: false; readonly receivedBytes: number };

/**
 * Reads a response body up to `cap` bytes. Past the cap the stream is destroyed, which aborts the
 * request and closes the connection, so memory stays bounded whatever the server sends.
 */
export async function readCapped(body: Readable, cap: number): Promise<CappedRead> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > cap) {
      body.destroy();
      return { ok: false, receivedBytes: size };
    }
    chunks.push(chunk);
  }
  return { ok: true, bytes: Buffer.concat(chunks, size) };
}
