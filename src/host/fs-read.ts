import { open, readlink, realpath, stat } from 'node:fs/promises';
import type { FileStat, ReadResult } from './host.js';
import { errnoCode } from '../common/index.js';

export const DEFAULT_MAX_READ_BYTES = 1024 * 1024;

function readCode(e: unknown): Extract<ReadResult, { ok: false }>['code'] {
  switch (errnoCode(e)) {
    case 'ENOENT':
    case 'ENOTDIR':
      return 'ENOENT';
    case 'EACCES':
    case 'EPERM':
      return 'EACCES';
    case 'EISDIR':
      return 'EISDIR';
    default:
      return 'EIO';
  }
}

/** What is read at a time past the size the file had when opened (growing files, /proc, devices). */
const READ_CHUNK = 64 * 1024;

/**
 * Read a text file, never more than maxBytes + 1 bytes of it: a huge or endless file (a device, a
 * log someone pointed the baseline at) cannot exhaust the agent's memory. Buffers
 * are sized from the file, not from the bound: the checks read small files every cycle, and a
 * buffer of the bound each time (1 MiB) would be garbage for the collector to chase.
 */
export async function readFileBounded(path: string, maxBytes = DEFAULT_MAX_READ_BYTES): Promise<ReadResult> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    return { ok: false, code: readCode(e), message: `${path}: cannot open (${errnoCode(e, 'error')})` };
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) return { ok: false, code: 'EISDIR', message: `${path}: is a directory` };
    const chunks: Buffer[] = [];
    let filled = 0;
    // One read for a regular file (its size plus one byte, to see it end), then a chunk at a time.
    let want = info.size > 0 ? info.size + 1 : READ_CHUNK;
    while (filled <= maxBytes) {
      const buf = Buffer.allocUnsafe(Math.min(want, maxBytes + 1 - filled));
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      filled += bytesRead;
      want = READ_CHUNK;
    }
    if (filled > maxBytes) return { ok: false, code: 'TOO_LARGE', message: `${path}: larger than ${maxBytes} bytes` };
    return { ok: true, text: (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, filled)).toString('utf8') };
  } catch (e) {
    return { ok: false, code: readCode(e), message: `${path}: cannot read (${errnoCode(e, 'error')})` };
  } finally {
    await handle.close();
  }
}

export async function statPath(path: string): Promise<FileStat | null> {
  try {
    const s = await stat(path);
    return { mtimeMs: s.mtimeMs, size: s.size, mode: s.mode };
  } catch {
    return null;
  }
}

export async function linkTarget(path: string): Promise<string | null> {
  try {
    return await readlink(path);
  } catch {
    return null;
  }
}

export async function resolvedPath(path: string): Promise<string | null> {
  try {
    return await realpath(path);
  } catch {
    return null;
  }
}
