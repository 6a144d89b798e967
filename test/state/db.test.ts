import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CACHE_KIB, openStateDb } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('the state database connection', () => {
  it("keeps a small page cache, not better-sqlite3's 16 MB", () => {
    const db = openStateDb(join(tmp.path, 'state.db'));
    try {
      expect(CACHE_KIB).toBeLessThanOrEqual(2048);
      // Negative: KiB, as SQLite reports a size given in KiB.
      expect(db.pragma('cache_size', { simple: true })).toBe(-CACHE_KIB);
    } finally {
      db.close();
    }
  });
});
