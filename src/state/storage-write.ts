import { AgentError, errnoCode } from '../common/index.js';

const ERRNO_CAUSE: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exhausted',
  EROFS: 'the file system is read-only',
  EIO: 'the file system reported an I/O error',
};

/** SQLite's result code in words, for any SQLITE_* code. */
function sqliteCause(code: string): string {
  if (code === 'SQLITE_FULL') return "the state database's filesystem is full";
  if (code.startsWith('SQLITE_IOERR')) return 'the state database hit an I/O error';
  if (code.startsWith('SQLITE_READONLY')) return 'the state database is read-only';
  if (code.startsWith('SQLITE_BUSY')) return 'the state database is locked by another process';
  return 'the state database refused the write';
}

const diskFull = (code: string): boolean => code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT';
const errorCode = (code: string): string => (diskFull(code) ? 'state_disk_full' : 'state_write');

/**
 * Run a write against the state database, turning SQLite's storage failures into one clear
 * AgentError. The transaction has been rolled back by then, so the message can say exactly what
 * did not happen. Other errors (and AgentErrors from nested calls) pass through unchanged.
 */
export function storageWrite<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const code = errnoCode(e);
    if (e instanceof AgentError || code === undefined || !code.startsWith('SQLITE_')) throw e;
    throw new AgentError(errorCode(code), `cannot ${what}: ${sqliteCause(code)} (${code}); the transaction was rolled back`, [(e as Error).message]);
  }
}

/**
 * Turns a failed write to the state directory (a storageWrite failure, SQLite's SQLITE_FULL /
 * SQLITE_IOERR* / SQLITE_READONLY*, or ENOSPC and friends from the evidence files, the heal spool
 * or the metrics file) into one AgentError that names the directory, the cause and the code.
 * SQLite has rolled back the transaction it was in, and a cycle's evidence is one transaction, so
 * it is chained and queued in full or not at all. Anything else passes through unchanged.
 */
export function stateWriteFailure(e: unknown, stateDir: string): unknown {
  // storageWrite already said what could not be done; add where.
  if (e instanceof AgentError && (e.code === 'state_disk_full' || e.code === 'state_write')) {
    return new AgentError(e.code, `state directory ${stateDir}: ${e.message}`, e.details);
  }
  if (e instanceof AgentError) return e;
  const code = errnoCode(e);
  if (code === undefined) return e;
  const sqliteStorage = code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY');
  const cause = sqliteStorage ? sqliteCause(code) : ERRNO_CAUSE[code];
  if (!cause) return e;
  return new AgentError(
    errorCode(code),
    `cannot write the state directory ${stateDir}: ${cause} (${code}); the cycle stopped, its evidence was committed whole or not at all, and the next cycle retries`,
    [(e as Error).message],
  );
}
