import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { errnoCode } from './errno.js';

/**
 * Write-then-rename with fsync of file and directory, so readers never see a torn file. The temp
 * name is random and opened O_CREAT|O_EXCL|O_NOFOLLOW: a name planted in advance (a link, a file)
 * makes the write fail, never lands it somewhere else. `group`: hand the file to that group.
 * `durable: false` skips both fsyncs, for a file rewritten every cycle that nothing relies on
 * after a power loss (the metrics file): readers still see the old file or the new one, whole.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, opts: { group?: number; durable?: boolean } = {}): void {
  const durable = opts.durable ?? true;
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  let fd: number;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (e) {
    // The temp name is random: name the file meant, so the same failure reads the same each time.
    const code = errnoCode(e);
    throw Object.assign(new Error(`${code ?? 'error'}: cannot create a file next to ${path}`), { code });
  }
  try {
    if (opts.group !== undefined) fchownSync(fd, fstatSync(fd).uid, opts.group);
    // The mode as asked, whatever the umask (the agent's unit has 0077; metrics must be world-readable).
    fchmodSync(fd, mode);
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    if (durable) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  if (!durable) return;
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
