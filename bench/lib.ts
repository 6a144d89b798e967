/** Shared by the benchmarks: machine facts, bundling a child to run on plain node, small statistics. */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

/**
 * The package as the Nix package installs it, in `dir`: bin/ (the launcher and its node flags),
 * dist/bundle, package.json, and node_modules linking this repository's, with better-sqlite3 taken
 * from `betterSqlite3` when given (one built for another node: the bundle resolves its externals
 * from here, as the installed package does). The launcher gets what the package's postInstall
 * gives it: the package directory and the node binary pinned. Returns the launcher's path.
 */
export function installPackage(dir: string, node: string, betterSqlite3?: string): string {
  if (!existsSync(join(REPO, 'dist', 'bundle', 'compliance-agent.mjs'))) throw new Error('dist/bundle is missing: run `npm run build` first');
  cpSync(join(REPO, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(REPO, 'dist', 'bundle'), join(dir, 'dist', 'bundle'), { recursive: true });
  cpSync(join(REPO, 'package.json'), join(dir, 'package.json'));
  const modules = join(dir, 'node_modules');
  mkdirSync(modules, { recursive: true });
  const repoModules = realpathSync(join(REPO, 'node_modules'));
  for (const name of readdirSync(repoModules)) {
    if (name.startsWith('.') || (betterSqlite3 && name === 'better-sqlite3')) continue;
    symlinkSync(join(repoModules, name), join(modules, name));
  }
  if (betterSqlite3) symlinkSync(realpathSync(betterSqlite3), join(modules, 'better-sqlite3'));
  const launcher = join(dir, 'bin', 'compliance-agent');
  let text = readFileSync(launcher, 'utf8');
  for (const [from, to] of [
    [LAUNCHER_PKG_LINE, `pkg=${dir}`],
    [LAUNCHER_NODE_LINE, `node=${node}`],
  ] as const) {
    if (!text.includes(`\n${from}\n`)) throw new Error(`bin/compliance-agent has no line "${from}" (packages/compliance-agent/default.nix replaces it too)`);
    text = text.replace(`\n${from}\n`, `\n${to}\n`);
  }
  writeFileSync(launcher, text);
  return launcher;
}

/** The launcher's lines the Nix package pins (substituteInPlace in packages/compliance-agent). */
export const LAUNCHER_PKG_LINE = 'pkg=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)';
export const LAUNCHER_NODE_LINE = 'node=node';

/** The V8 flags the launcher starts node with. */
export function launcherNodeFlags(): string[] {
  return readFileSync(join(REPO, 'bin', 'node-flags'), 'utf8')
    .split('\n')
    .filter(Boolean);
}
