import { AgentError } from '../common/index.js';

/**
 * Run a write against the state database, turning SQLite's storage failures into one clear
 * AgentError. The transaction has been rolled back by then, so the message can say exactly what
 * did not happen. Other errors (and AgentErrors from nested calls) pass through unchanged.
 */
export function storageWrite<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (e instanceof AgentError || typeof code !== 'string' || !code.startsWith('SQLITE_')) throw e;
    const cause =
      code === 'SQLITE_FULL'
        ? "the state database's filesystem is full"
        : code.startsWith('SQLITE_IOERR')
          ? 'the state database hit an I/O error'
          : code.startsWith('SQLITE_READONLY')
            ? 'the state database is read-only'
            : code.startsWith('SQLITE_BUSY')
              ? 'the state database is locked by another process'
              : 'the state database refused the write';
    const errorCode = code === 'SQLITE_FULL' ? 'state_disk_full' : 'state_write';
    throw new AgentError(errorCode, `cannot ${what}: ${cause} (${code}); the transaction was rolled back`, [(e as Error).message]);
  }
}
