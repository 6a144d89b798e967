import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';

// The README's runnable blocks, run as a newcomer would: in a fresh copy of the repository (its
// tracked and new files, committed to a scratch git repository), each block in its own bash with
// `set -euo pipefail`, HOME and TMPDIR in the scratch directory. A block is runnable when the line
// before its ```sh fence is exactly `<!-- runnable -->`. Afterwards `git status` must be clean:
// nothing the README tells a user to run writes into the tree.

const REPO = join(import.meta.dirname, '..', '..');
const MARKER = '<!-- runnable -->';

export function runnableBlocks(markdown: string): { line: number; code: string }[] {
  const lines = markdown.split('\n');
  const blocks: { line: number; code: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== MARKER) continue;
    if (lines[i + 1] !== '```sh') throw new Error(`README.md:${i + 1}: ${MARKER} must be followed by a \`\`\`sh fence`);
    const end = lines.indexOf('```', i + 2);
    if (end < 0) throw new Error(`README.md:${i + 2}: unterminated fence`);
    blocks.push({ line: i + 3, code: lines.slice(i + 2, end).join('\n') });
  }
  return blocks;
}

const tmp = tempDir('ca-readme-');
const copy = join(tmp.path, 'compliance-agent');
const git = (...args: string[]) =>
  spawnSync('git', ['-c', 'user.name=readme', '-c', 'user.email=readme@example.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd: copy, encoding: 'utf8' });

beforeAll(() => {
  // Tracked files plus new ones not ignored: what a clone of this change would hold.
  const listed = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' });
  expect(listed.status).toBe(0);
  for (const f of listed.stdout.split('\0').filter((f) => f && f !== 'node_modules')) {
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    try {
      copyFileSync(join(REPO, f), join(copy, f));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // deleted in the work tree, not yet committed
    }
  }
  symlinkSync(realpathSync(join(REPO, 'node_modules')), join(copy, 'node_modules'));
  expect(git('init', '-q').status).toBe(0);
  // node_modules is a directory in a real clone (ignored as node_modules/); here it is a link.
  writeFileSync(join(copy, '.git', 'info', 'exclude'), '/node_modules\n');
  expect(git('add', '-A').status).toBe(0);
  expect(git('commit', '-qm', 'clone').status).toBe(0);
  mkdirSync(join(tmp.path, 'home'));
  mkdirSync(join(tmp.path, 'tmp'));
}, 120_000);
afterAll(() => tmp.cleanup());

/** One block in its own process group, killed with whatever it left running. */
function runBlock(code: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `set -euo pipefail\n${code}`], {
      cwd: copy,
      detached: true,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: join(tmp.path, 'home'), TMPDIR: join(tmp.path, 'tmp'), LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 240_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is already gone: the block cleaned up after itself.
      }
      resolve({ status, output });
    });
  });
}

const blocks = runnableBlocks(readFileSync(join(REPO, 'README.md'), 'utf8'));

describe('README.md runnable blocks', () => {
  it('marks the getting-started, outside-Nix and reference MCP blocks', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.map((b) => b.code).join('\n')).toMatch(/npm run build[\s\S]*compliance-agent once[\s\S]*reference-mcp\/server\.ts/);
  });

  // Sequential: the first builds dist/, which the others run.
  for (const block of blocks) {
    it(`README.md:${block.line} runs and exits 0`, async () => {
      const r = await runBlock(block.code);
      expect(r.status, r.output).toBe(0);
    }, 300_000);
  }

  it('leaves git status clean in the copy', () => {
    const status = git('status', '--porcelain', '--untracked-files=all');
    expect(status.stdout).toBe('');
  });
});
