import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { fsyncSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/common/index.js';
import { renderMetrics, writeMetrics, type MetricsSnapshot } from '../../src/observe/metrics.js';
import { tempDir } from '../helpers/tmp.js';

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  return { ...fs, fsyncSync: vi.fn(fs.fsyncSync) };
});

const tmp = tempDir('metrics-file-');
afterAll(() => tmp.cleanup());
beforeEach(() => {
  vi.mocked(fsyncSync).mockClear();
});

const snapshot = (cycles: number): MetricsSnapshot => ({
  lastPollTimestamp: 1_700_000_000_000 + cycles * 60_000,
  lastPollOk: true,
  cycleDurationMs: 12,
  cycles,
  chainSeq: 7,
  bundlesCreated: 7,
  ordersAccepted: 0,
  ordersRejected: 0,
  queue: [{ destination: 'mcp', pending: 0, dead: 0, oldestPendingAgeMs: null }],
  checks: [{ check: 'services', status: 'compliant' }],
});

describe('the metrics file', () => {
  it('is rewritten every cycle by rename, whole, world-readable, without an fsync', () => {
    const path = join(tmp.path, 'metrics.prom');
    for (const cycles of [1, 2]) {
      writeMetrics(path, snapshot(cycles));
      expect(readFileSync(path, 'utf8')).toBe(renderMetrics(snapshot(cycles)));
    }
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(readdirSync(tmp.path)).toEqual(['metrics.prom']);
    expect(fsyncSync).not.toHaveBeenCalled();
  });

  it('other atomic writes (keys, records, the sequence file) still fsync the file and its directory', () => {
    writeFileAtomic(join(tmp.path, 'record'), 'x\n');
    expect(fsyncSync).toHaveBeenCalledTimes(2);
  });
});
