import { closeSync, constants, fstatSync, fsyncSync, lstatSync, openSync, readdirSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AgentError, errnoCode } from '../common/index.js';
import { healLayout, type HealLayout } from '../state/index.js';
import { HealRequestSchema, HealResultSchema, MAX_SPOOL_FILE, describeIssues, entryId, type HealRequest, type HealResult } from './spool.js';

export interface SpoolEntry {
  readonly name: string;
  readonly mtimeMs: number;
}

/**
 * The agent's side of the healer's tree, built once from config.healDir: it drops requests in the
 * drop box and reads the results root wrote. Plain file calls as the agent user, in a directory
 * the agent may write; nothing here runs as root.
 */
export class Spool {
  readonly paths: HealLayout;

  constructor(healDir: string) {
    this.paths = healLayout(healDir);
  }

  /** Write a request into the drop box: a temp name of the agent's own, then renamed into place. */
  write(request: HealRequest): string {
    const dir = this.paths.requests;
    const text = JSON.stringify(HealRequestSchema.parse(request)) + '\n';
    const final = join(dir, `${request.request_id}.json`);
    const tmp = join(dir, `.${request.request_id}.tmp`);
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
    return final;
  }

  /** The agent's entries in the drop box with their age: requests by id, anything else as a stray name. */
  ownEntries(): { requests: Array<{ id: string; mtimeMs: number }>; strays: SpoolEntry[] } {
    const dir = this.paths.requests;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      // No healer installed (yet): nothing of the agent's is there.
      if (errnoCode(e) === 'ENOENT') return { requests: [], strays: [] };
      throw new AgentError('spool_read', `${dir}: cannot list the heal drop box (${errnoCode(e, 'error')})`);
    }
    const requests: Array<{ id: string; mtimeMs: number }> = [];
    const strays: SpoolEntry[] = [];
    for (const name of names.sort()) {
      let mtimeMs: number;
      try {
        mtimeMs = lstatSync(join(dir, name)).mtimeMs;
      } catch {
        continue;
      }
      const id = entryId(name);
      if (id) requests.push({ id, mtimeMs });
      else strays.push({ name, mtimeMs });
    }
    return { requests, strays };
  }

  /** Remove one of the agent's own entries; the sticky drop box refuses anyone else's. */
  remove(name: string): void {
    rmSync(join(this.paths.requests, name), { force: true, recursive: true });
  }

  /** Result files root wrote, by name order. */
  resultNames(): string[] {
    const dir = this.paths.results;
    try {
      return readdirSync(dir)
        .filter((n) => entryId(n) !== null)
        .sort();
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw new AgentError('spool_read', `${dir}: cannot list heal results (${errnoCode(e, 'error')})`);
    }
  }

  /** Read a result file without following a link and only if it is a small regular file. */
  readResult(name: string): { ok: true; result: HealResult } | { ok: false; message: string } {
    let fd: number;
    try {
      fd = openSync(join(this.paths.results, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      return { ok: false, message: `cannot open (${errnoCode(e, 'error')})` };
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return { ok: false, message: 'not a regular file' };
      if (st.size > MAX_SPOOL_FILE) return { ok: false, message: `${st.size} bytes, over the ${MAX_SPOOL_FILE}-byte limit` };
      const buf = Buffer.alloc(st.size);
      let off = 0;
      while (off < st.size) {
        const n = readSync(fd, buf, off, st.size - off, off);
        if (n === 0) break;
        off += n;
      }
      let value: unknown;
      try {
        value = JSON.parse(buf.subarray(0, off).toString('utf8'));
      } catch {
        return { ok: false, message: 'not JSON' };
      }
      const parsed = HealResultSchema.safeParse(value);
      if (!parsed.success) return { ok: false, message: describeIssues(parsed.error.issues) };
      if (`${parsed.data.result_id}.json` !== name) return { ok: false, message: 'result_id does not match the file name' };
      return { ok: true, result: parsed.data };
    } finally {
      closeSync(fd);
    }
  }
}
