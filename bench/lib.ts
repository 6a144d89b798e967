/** Shared by the benchmarks: machine facts, bundling a child to run on plain node, small statistics. */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export const REPO = fileURLToPath(new URL('..', import.meta.url));

export function machine(): { cpu: string; cores: number; node: string } {
  return { cpu: cpus()[0]?.model.trim() ?? 'unknown cpu', cores: cpus().length, node: process.version };
}

/**
 * Bundle a TypeScript entry into one ESM file (packages stay external, resolved from this repo's
 * node_modules), so a measured child runs on plain `node` as the built agent does, without tsx.
 */
export async function bundle(entry: string): Promise<{ path: string; cleanup: () => void }> {
  const dir = join(REPO, 'node_modules', '.cache', 'ca-bench');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${entry.replace(/\W+/g, '-')}-${process.pid}.mjs`);
  await build({ entryPoints: [join(REPO, entry)], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: path, logLevel: 'warning' });
  return { path, cleanup: () => rmSync(path, { force: true }) };
}

/** Run `node file args...`, return its stdout (it must exit 0). */
export function runNode(file: string, args: string[], nodeArgs: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, file, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`))));
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export const MB = 1024 * 1024;
