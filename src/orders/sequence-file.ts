import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { AgentError, writeFileAtomic, errnoCode } from '../common/index.js';

/**
 * MSP side: the per-site order sequence, kept in a file the MSP owns (one per site). `take` holds
 * an exclusive lock (PATH.lock, created with O_EXCL) while it reads the last sequence, lets `use`
 * sign with the next one, and only then stores it with an atomic rename: two signers never get the
 * same number, and an order that fails to sign does not use one up.
 */
export function withNextSequence<T>(path: string, use: (sequence: number) => T, waitMs = 5000): T {
  const lock = `${path}.lock`;
  const fd = acquire(lock, path, waitMs);
  try {
    writeSync(fd, `${process.pid}\n`);
    const next = readLast(path) + 1;
    if (!Number.isSafeInteger(next)) throw new AgentError('sequence_file', `${path}: the sequence is exhausted`);
    const out = use(next);
    writeFileAtomic(path, `${next}\n`, 0o600);
    return out;
  } finally {
    closeSync(fd);
    unlinkSync(lock);
  }
}

/** O_EXCL create of the lock file, waiting up to `waitMs` for another signer to finish. */
function acquire(lock: string, path: string, waitMs: number): number {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return openSync(lock, 'wx', 0o600);
    } catch (e) {
      const code = errnoCode(e);
      if (code !== 'EEXIST') throw new AgentError('sequence_file', `${lock}: cannot create the lock (${code ?? 'error'})`);
      if (Date.now() >= deadline) {
        throw new AgentError(
          'sequence_locked',
          `${path}: another order sign has held ${lock} for ${waitMs / 1000} s; if none is running (a crash), check the sequence file and remove the lock`,
        );
      }
      // A synchronous pause: signing is a short CLI step, nothing else runs meanwhile.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
}

function readLast(path: string): number {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 0;
    throw new AgentError('sequence_file', `${path}: cannot read (${errnoCode(e, 'error')})`);
  }
  const t = text.trim();
  if (!/^\d{1,16}$/.test(t) || !Number.isSafeInteger(Number(t))) {
    throw new AgentError('sequence_file', `${path}: must hold the last sequence signed, one non-negative integer`);
  }
  return Number(t);
}
