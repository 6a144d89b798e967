import { open, readlink, realpath, stat } from 'node:fs/promises';
import type { FileStat, ReadResult } from './host.js';

export const DEFAULT_MAX_READ_BYTES = 1024 * 1024;

function readCode(e: unknown): Extract<ReadResult, { ok: false }>['code'] {
  switch ((e as NodeJS.ErrnoException).code) {
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

/**
 * Read a text file without ever holding more than maxBytes + 1 bytes: a huge or endless file
 * (a device, a log someone pointed the baseline at) cannot exhaust the agent's memory.
 */
export async function readFileBounded(path: string, maxBytes = DEFAULT_MAX_READ_BYTES): Promise<ReadResult> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    return { ok: false, code: readCode(e), message: `${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const info = await handle.stat();
    if (info.isDirectory()) return { ok: false, code: 'EISDIR', message: `${path}: is a directory` };
    const buf = Buffer.alloc(maxBytes + 1);
    let filled = 0;
    while (filled < buf.length) {
      const { bytesRead } = await handle.read(buf, filled, buf.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > maxBytes) return { ok: false, code: 'TOO_LARGE', message: `${path}: larger than ${maxBytes} bytes` };
    return { ok: true, text: buf.subarray(0, filled).toString('utf8') };
  } catch (e) {
    return { ok: false, code: readCode(e), message: `${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
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
