import { randomUUID } from 'node:crypto';
import { chmodSync, chownSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import { AgentError, isoSeconds, errnoCode } from '../common/index.js';
import { healLayout } from '../state/index.js';
import { initHealerState } from './healer-state.js';
import { controlsFor } from './plan.js';
import { assertRootOnlyDir, assertTrustedChain, openDropBox, writeRootFile, type Identity } from './safe-fs.js';
import { safeReason, type HealResult } from './spool.js';

/** Whether `inner` is `outer` or below it. */
function isWithin(inner: string, outer: string): boolean {
  const rel = relative(resolve(outer), resolve(inner));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * The healer's tree must be apart from the agent's state directory: root would otherwise keep
 * its memory, or read its requests, where the agent can rename and replace things.
 */
export function assertApart(healDir: string, stateDir: string): void {
  if (isWithin(healDir, stateDir) || isWithin(stateDir, healDir)) {
    throw new AgentError('heal_tree', `healDir ${healDir} and stateDir ${stateDir} overlap; the healer's tree must be outside the agent's state directory`);
  }
}

/**
 * The agent user's uid and primary gid from /etc/passwd (Node has no getpwnam). The file must be
 * root's and not writable by anyone else, or its answer is worth nothing.
 */
export function resolveAgentIdentity(user: string, passwd = '/etc/passwd'): Identity {
  assertTrustedChain(dirname(passwd), process.getuid?.() ?? 0);
  const fd = openSync(passwd, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  let text: string;
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== 0 || (st.mode & 0o022) !== 0) throw new AgentError('agent_user', `${passwd}: not a root-owned file writable only by root`);
    const buf = Buffer.alloc(Math.min(st.size, 16 * 1024 * 1024));
    const n = readSync(fd, buf, 0, buf.length, 0);
    text = buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === user && f.length >= 4 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!)) {
      const uid = Number(f[2]);
      if (uid === 0) throw new AgentError('agent_user', `agent user ${user} is root; the healer's boundary needs an unprivileged agent`);
      return { uid, gid: Number(f[3]) };
    }
  }
  throw new AgentError('agent_user', `agent user ${user} is not in ${passwd}`);
}

function ensureDir(path: string, mode: number, gid: number): void {
  try {
    const st = lstatSync(path);
    if (!st.isDirectory()) throw new AgentError('heal_tree', `${path}: exists and is not a directory`);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
    mkdirSync(path, { mode: 0o700 });
  }
  chownSync(path, process.getuid?.() ?? 0, gid);
  chmodSync(path, mode);
}

/**
 * Create the healer's tree and its state, once (what `heal-apply --init` and the NixOS module's
 * tmpfiles rules and init unit do): root 0755, state/ 0700, requests/ 1770 and results/ 0750 for
 * the agent's group. Refuses to replace an existing state.
 */
export function initHealTree(healDir: string, agent: Identity, now: number): void {
  const rootUid = process.getuid?.() ?? 0;
  const rootGid = process.getgid?.() ?? 0;
  const p = healLayout(healDir);
  assertTrustedChain(dirname(resolve(healDir)), rootUid);
  ensureDir(p.root, 0o755, rootGid);
  ensureDir(p.state, 0o700, rootGid);
  ensureDir(p.requests, 0o1770, agent.gid);
  ensureDir(p.results, 0o750, agent.gid);
  assertRootOnlyDir(p.state, rootUid, { private: true });
  assertRootOnlyDir(p.results, rootUid);
  openDropBox(p.requests, rootUid, agent.gid).close();
  initHealerState(p.healerDb, now);
}

/**
 * What the unit's OnFailure= runs: a failed result in root's results directory, which the agent
 * turns into evidence, so a healer that crashed or hit its start limit is not silent.
 */
export function recordHealerFailure(healDir: string, agent: Identity, now: number, what: string): HealResult {
  const p = healLayout(healDir);
  assertRootOnlyDir(p.results, process.getuid?.() ?? 0);
  const result: HealResult = {
    version: 1,
    result_id: randomUUID(),
    request_id: null,
    order_id: null,
    check: 'order',
    outcome: 'failed',
    reason: safeReason(`the healer unit failed (${what}); requests may be unanswered until it runs again: see its journal`),
    started_at: isoSeconds(now),
    finished_at: isoSeconds(now),
    pre_state: null,
    action_taken: [],
    post_state: null,
    rollback_available: false,
    controls: controlsFor([]),
  };
  writeRootFile(p.results, `${result.result_id}.json`, JSON.stringify(result, null, 2) + '\n', { mode: 0o640, group: agent.gid });
  return result;
}
