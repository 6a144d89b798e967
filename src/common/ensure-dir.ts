import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AgentError } from './errors.js';
import { errnoCode } from './errno.js';

const WHY: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  ENOENT: 'the file system refuses new entries there',
  ENOTDIR: 'a parent is not a directory',
};

function why(e: unknown): string {
  const code = errnoCode(e, 'error');
  return WHY[code] ? `${WHY[code]}, ${code}` : code;
}

/**
 * `mkdir -p` that fails with one clear line. Node 20's recursive mkdirSync loops forever where a
 * parent cannot be created (`/proc/x/y`) and reports a raw EEXIST when a file is in the way, so this
 * walks up to the nearest existing ancestor, checks it is a directory, then creates each missing
 * level with `mode`. An existing directory is used as it is: its mode is never changed.
 */
export function ensureDir(path: string, what: string, mode = 0o700): void {
  const missing: string[] = [];
  for (let cur = resolve(path); ; cur = dirname(cur)) {
    try {
      if (statSync(cur).isDirectory()) break;
      throw new AgentError('not_a_directory', `${what} ${path}: ${cur} exists and is not a directory`);
    } catch (e) {
      if (e instanceof AgentError) throw e;
      const code = errnoCode(e);
      // ENOTDIR: a file further up; walk on to name it.
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(cur) === cur) {
        throw new AgentError('dir_unusable', `${what} ${path}: cannot use ${cur} (${why(e)})`);
      }
      if (code === 'ENOENT') missing.push(cur);
    }
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, { mode });
    } catch (e) {
      // Another process created it in the meantime: fine if it is a directory.
      if (errnoCode(e) === 'EEXIST' && statSync(dir).isDirectory()) continue;
      throw new AgentError('dir_create', `${what} ${path}: cannot create ${dir} (${why(e)})`);
    }
  }
}
