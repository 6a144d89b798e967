import { AgentError } from '../common/index.js';

const ERRNO_CAUSE: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  EROFS: 'the file system is read-only',
  EIO: 'the file system reported an I/O error',
};

function causeOf(code: string): string | null {
  if (code === 'SQLITE_FULL') return 'the state database cannot grow: no space left on the device';
  if (code.startsWith('SQLITE_IOERR')) return 'the state database hit an I/O error';
  if (code.startsWith('SQLITE_READONLY')) return 'the state database is read-only';
  return ERRNO_CAUSE[code] ?? null;
}

/**
 * Turns a failed write to the state directory (SQLite's SQLITE_FULL / SQLITE_IOERR*, or ENOSPC and
 * friends from the evidence files, the heal spool or the metrics file) into one AgentError that
 * names the directory, the cause and the code. SQLite has rolled back the transaction it was in,
 * and a cycle's evidence is one transaction, so it is chained and queued in full or not at all.
 * Anything else passes through unchanged.
 */
export function stateWriteFailure(e: unknown, stateDir: string): unknown {
  // storageWrite (src/state) already said what could not be done; add where.
  if (e instanceof AgentError && (e.code === 'state_disk_full' || e.code === 'state_write')) {
    return new AgentError(e.code, `state directory ${stateDir}: ${e.message}`, e.details);
  }
  if (e instanceof AgentError || typeof e !== 'object' || e === null) return e;
  const code = (e as { code?: unknown }).code;
  const cause = typeof code === 'string' ? causeOf(code) : null;
  if (!cause) return e;
  const full = code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT';
  return new AgentError(
    full ? 'state_disk_full' : 'state_write',
    `cannot write the state directory ${stateDir}: ${cause} (${String(code)}); the cycle stopped, its evidence was committed whole or not at all, and the next cycle retries`,
    [(e as Error).message],
  );
}
