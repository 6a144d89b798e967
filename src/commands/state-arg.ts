import { statSync } from 'node:fs';
import { stateLayout } from '../state/index.js';
import { errnoCode } from '../common/index.js';

/**
 * The state database of a command that only reads or trims state (`status`, `prune`): `none` before
 * the agent first ran, which is not an error; a stateDir that is not a directory is one.
 */
export function existingStateDb(stateDir: string): { kind: 'db' | 'none'; path: string } | { kind: 'error'; message: string } {
  const path = stateLayout(stateDir).db;
  for (const [p, wantDir] of [
    [stateDir, true],
    [path, false],
  ] as const) {
    try {
      const st = statSync(p);
      if (st.isDirectory() !== wantDir) return { kind: 'error', message: `${p}: ${wantDir ? 'stateDir is not a directory' : 'is not a state database file'}` };
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT') return { kind: 'none', path };
      return { kind: 'error', message: `${p}: cannot read (${code ?? (e as Error).message})` };
    }
  }
  return { kind: 'db', path };
}

export function noStateLine(path: string): string {
  return `no state yet: the agent has not run (${path} does not exist)`;
}
