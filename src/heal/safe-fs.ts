import { closeSync, constants, fstatSync, lstatSync, openSync, opendirSync, readSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { AgentError, writeFileAtomic, errnoCode } from '../common/index.js';

/**
 * File-system primitives for the root healer, which shares one directory (the drop box) with the
 * unprivileged agent. Node has no openat(2), so two rules carry the weight:
 *
 * - Every directory root writes in, and every ancestor of the drop box, is checked component by
 *   component (lstat: no link, owned by root, not writable by group or others unless sticky).
 *   The agent can then change no name on any of those paths, so a plain path names the same
 *   directory every time root uses it.
 * - The drop box itself is opened once with O_NOFOLLOW|O_DIRECTORY, checked with fstat, and then
 *   only reached through /proc/self/fd/N: listing and opening entries go through that descriptor
 *   (the kernel resolves the magic link to the opened directory), as openat would.
 */

export interface Identity {
  readonly uid: number;
  readonly gid: number;
}

/** Not writable by group or others, or sticky (like /tmp, where others cannot rename what is not theirs). */
function safeDirMode(st: Stats): boolean {
  return (st.mode & 0o022) === 0 || (st.mode & 0o1000) !== 0;
}

/**
 * Refuse unless every component from / down to `path` is a real directory owned by `rootUid`
 * and writable by nobody else (sticky directories excepted). Loud: an AgentError naming the
 * component, never a silent fallback.
 */
export function assertTrustedChain(path: string, rootUid: number): void {
  const abs = resolve(path);
  const parts = abs.split(sep).filter(Boolean);
  let cur = '/';
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) cur = join(cur, parts[i - 1]!);
    let st: Stats;
    try {
      st = lstatSync(cur);
    } catch (e) {
      throw new AgentError('heal_tree', `${cur}: cannot stat (${errnoCode(e, 'error')}); the healer's tree must exist (heal-apply --init)`);
    }
    if (st.isSymbolicLink()) throw new AgentError('heal_tree', `${cur}: is a symbolic link; the healer follows none on its own paths`);
    if (!st.isDirectory()) throw new AgentError('heal_tree', `${cur}: is not a directory`);
    if (st.uid !== 0 && st.uid !== rootUid) throw new AgentError('heal_tree', `${cur}: owned by uid ${st.uid}, not root`);
    if (!safeDirMode(st)) throw new AgentError('heal_tree', `${cur}: writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`);
  }
}

/** A directory only root may write in: exactly owned by rootUid, no write bit for group or others. */
export function assertRootOnlyDir(path: string, rootUid: number, opts: { private?: boolean } = {}): void {
  assertTrustedChain(path, rootUid);
  const st = lstatSync(path);
  if (st.uid !== rootUid) throw new AgentError('heal_tree', `${path}: owned by uid ${st.uid}, not the healer's`);
  if ((st.mode & 0o022) !== 0) throw new AgentError('heal_tree', `${path}: writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`);
  if (opts.private && (st.mode & 0o077) !== 0) throw new AgentError('heal_tree', `${path}: must be 0700 (mode ${(st.mode & 0o7777).toString(8)})`);
}

/** The drop box opened once; entries are reached only through its descriptor. */
export interface DirHandle {
  readonly fd: number;
  /** /proc/self/fd/N: the opened directory, whatever its name points at now. */
  readonly via: string;
  close(): void;
}

/**
 * Open the drop box without following a link and check, on the opened descriptor, that it is
 * root's directory for the agent's group: sticky (the agent can remove or rename only its own
 * entries), nothing for others.
 */
export function openDropBox(path: string, rootUid: number, agentGid: number): DirHandle {
  assertTrustedChain(dirname(path), rootUid);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    throw new AgentError('heal_tree', `${path}: cannot open the drop box (${errnoCode(e, 'error')})`);
  }
  try {
    const st = fstatSync(fd);
    const mode = st.mode & 0o7777;
    if (st.uid !== rootUid) throw new AgentError('heal_tree', `${path}: drop box owned by uid ${st.uid}, not root`);
    if (st.gid !== agentGid) throw new AgentError('heal_tree', `${path}: drop box group is gid ${st.gid}, not the agent's ${agentGid}`);
    if ((mode & 0o1000) === 0 || (mode & 0o007) !== 0)
      throw new AgentError('heal_tree', `${path}: drop box mode ${mode.toString(8)}, must be sticky with nothing for others (1770 or 1730)`);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const via = `/proc/self/fd/${fd}`;
  try {
    lstatSync(via);
  } catch (e) {
    closeSync(fd);
    throw new AgentError('heal_tree', `/proc is not mounted (${errnoCode(e, 'error')}); the healer reaches the drop box only through its descriptor`);
  }
  return { fd, via, close: () => closeSync(fd) };
}

/** Up to `max` names in the directory, in no particular order; `more` when there were others. */
export function listNames(dir: DirHandle, max: number): { names: string[]; more: boolean } {
  const names: string[] = [];
  const d = opendirSync(dir.via);
  try {
    for (let e = d.readSync(); e !== null; e = d.readSync()) {
      if (names.length >= max) return { names, more: true };
      names.push(e.name);
    }
  } finally {
    d.closeSync();
  }
  return { names, more: false };
}

export type EntryRead = { ok: true; text: string; mtimeMs: number } | { ok: false; message: string };

/**
 * Read one entry of the drop box as the agent's file: a regular file owned by the agent, one
 * link, at most `maxBytes`. lstat first, so a planted FIFO or device node is never opened; the
 * open itself does not follow a link, does not block and takes no controlling terminal; fstat
 * then confirms it is the same inode, so a swap in between is refused, not read.
 */
export function readAgentFile(dir: DirHandle, name: string, agentUid: number, maxBytes: number): EntryRead {
  const path = `${dir.via}/${name}`;
  const check = (st: Stats): string | null => {
    if (!st.isFile()) return 'not a regular file';
    if (st.uid !== agentUid) return `owned by uid ${st.uid}, not the agent`;
    if (st.nlink !== 1) return `${st.nlink} hard links`;
    if (st.size > maxBytes) return `${st.size} bytes, over the ${maxBytes}-byte limit`;
    return null;
  };
  let before: Stats;
  try {
    before = lstatSync(path);
  } catch (e) {
    return { ok: false, message: `cannot stat (${errnoCode(e, 'error')})` };
  }
  const early = check(before);
  if (early) return { ok: false, message: early };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    return { ok: false, message: `cannot open (${errnoCode(e, 'error')})` };
  }
  try {
    const st = fstatSync(fd);
    if (st.ino !== before.ino || st.dev !== before.dev) return { ok: false, message: 'replaced while being read' };
    const late = check(st);
    if (late) return { ok: false, message: late };
    // One byte more than allowed: a file grown since fstat is refused, not read without end.
    const buf = Buffer.alloc(maxBytes + 1);
    let off = 0;
    for (;;) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
      if (off > maxBytes) return { ok: false, message: `grew over the ${maxBytes}-byte limit while being read` };
    }
    return { ok: true, text: buf.subarray(0, off).toString('utf8'), mtimeMs: st.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/** writeFileAtomic's temp names: `.<name>.<16 hex>.tmp`. */
const TEMP_RE = /^\.[^/]+\.[0-9a-f]{16}\.tmp$/;

/**
 * Write a file in a directory only root can write (the caller checked it with assertRootOnlyDir):
 * writeFileAtomic's random temp name, O_CREAT|O_EXCL|O_NOFOLLOW, fsync, rename, fsync of the
 * directory. `group`: the file's group, with exactly `mode` (results are read by the agent's group).
 */
export function writeRootFile(dir: string, name: string, data: string, opts: { mode: number; group?: number }): string {
  const path = join(dir, name);
  writeFileAtomic(path, data, opts.mode, opts.group === undefined ? {} : { group: opts.group });
  return path;
}

/** Remove temp files a killed healer left in one of its own directories (never the drop box). */
export function removeStaleTemps(dir: string): number {
  let n = 0;
  const d = opendirSync(dir);
  try {
    for (let e = d.readSync(); e !== null; e = d.readSync()) {
      if (e.isFile() && TEMP_RE.test(e.name)) {
        unlinkSync(join(dir, e.name));
        n++;
      }
    }
  } finally {
    d.closeSync();
  }
  return n;
}

/** Remove regular files modified before `before` (ms) from one of root's own directories. */
export function removeOlderThan(dir: string, before: number): number {
  let n = 0;
  const d = opendirSync(dir);
  try {
    for (let e = d.readSync(); e !== null; e = d.readSync()) {
      const path = join(dir, e.name);
      if (e.isFile() && lstatSync(path).mtimeMs < before) {
        unlinkSync(path);
        n++;
      }
    }
  } finally {
    d.closeSync();
  }
  return n;
}
