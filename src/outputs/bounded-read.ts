import type { Readable } from 'node:stream';

/**
 * Up to `cap` bytes of a response body; past the cap the stream is destroyed so memory stays
 * bounded whatever the receiver sends. A body that breaks off yields what arrived: the status line
 * already carried the receiver's verdict.
 */
export async function readBounded(body: Readable, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk.subarray(0, cap - size));
      size += Math.min(chunk.length, cap - size);
      if (size >= cap) {
        body.destroy();
        break;
      }
    }
  } catch {
    // a reset mid-body: keep what arrived
  }
  return Buffer.concat(chunks, size);
}
