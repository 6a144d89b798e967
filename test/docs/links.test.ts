import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

// README.md and docs/*.md must stand alone in the repository: every relative link resolves to a
// file or directory in it (and its #anchor to a heading there), every repository path written in
// code (`src/heal/`, `examples/config.json`) exists, and nothing points outside the repository.

const REPO = resolve(import.meta.dirname, '..', '..');

/** The top-level folders and files of the repository a document may name as a path. */
const REPO_ROOTS = ['src', 'test', 'testing', 'docs', 'demo', 'bench', 'modules', 'examples', 'nixosTests', 'checks', 'scripts', 'bin', 'packages', 'patches', '\\.ci'];
const PATH_TOKEN = new RegExp(`(?<![\\w./$~-])(?:${REPO_ROOTS.join('|')})/(?:[\\w./@-]*[\\w/])?`, 'g');
/** Things outside the repository a document must not lean on. */
const OUTSIDE = [/\.\.\/shared\b/, /\bDESIGN(?:\.md|\s+\d)/, /\/work\//, /\bissue[ -]\d+\b/i];

interface DocProblem {
  readonly line: number;
  readonly problem: string;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const { text } of outsideFences(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (!m) continue;
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** Lines with their numbers, split into those inside ``` fences and those outside. */
function lines(markdown: string): { line: number; text: string; fenced: boolean }[] {
  let fenced = false;
  return markdown.split('\n').map((text, i) => {
    if (/^\s*```/.test(text)) {
      fenced = !fenced;
      return { line: i + 1, text, fenced: true };
    }
    return { line: i + 1, text, fenced };
  });
}

function outsideFences(markdown: string) {
  return lines(markdown).filter((l) => !l.fenced);
}

/**
 * Every problem of one document at `file` (a path inside `root`): links that do not resolve, anchors
 * with no heading, repository paths that do not exist, references to anything outside `root`.
 */
function docProblems(file: string, markdown: string, root: string): DocProblem[] {
  const problems: DocProblem[] = [];
  const here = dirname(file);
  const inside = (p: string) => p === root || p.startsWith(root + sep);
  for (const { line, text, fenced } of lines(markdown)) {
    for (const pattern of OUTSIDE) if (pattern.test(text)) problems.push({ line, problem: `refers outside the repository (${pattern.source})` });
    if (!fenced) {
      for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...: not a file
        const [path, anchor] = target.split('#', 2) as [string, string | undefined];
        if (path.startsWith('/')) {
          problems.push({ line, problem: `${target}: an absolute path, not a link inside the repository` });
          continue;
        }
        const abs = path === '' ? file : resolve(here, path);
        if (!inside(abs)) {
          problems.push({ line, problem: `${target}: points outside the repository` });
          continue;
        }
        if (path !== '' && !existsSync(abs)) {
          problems.push({ line, problem: `${target}: ${relative(root, abs)} does not exist` });
          continue;
        }
        if (anchor !== undefined && (path === '' || (abs.endsWith('.md') && statSync(abs).isFile()))) {
          const anchors = headingAnchors(path === '' ? markdown : readFileSync(abs, 'utf8'));
          if (!anchors.has(anchor)) problems.push({ line, problem: `${target}: no heading #${anchor} in ${relative(root, abs)}` });
        }
      }
    }
    // Link targets were checked above; each problem is named once.
    for (const m of (fenced ? text : text.replace(/\]\([^)]*\)/g, ']()')).matchAll(PATH_TOKEN)) {
      const path = m[0].replace(/\/$/, '');
      if (!existsSync(join(root, path))) problems.push({ line, problem: `${m[0]}: no such path in the repository` });
    }
  }
  return problems;
}

function documents(): string[] {
  const docs = readdirSync(join(REPO, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(REPO, 'docs', f));
  return [join(REPO, 'README.md'), ...docs];
}

describe('README.md and docs/*.md stand alone', () => {
  it('covers the design notes', () => {
    const names = documents().map((f) => relative(REPO, f));
    for (const d of ['docs/architecture.md', 'docs/trust-model.md', 'docs/orders.md', 'docs/evidence.md', 'docs/config.md', 'docs/mcp-api.md']) expect(names).toContain(d);
  });

  for (const file of documents()) {
    it(`${relative(REPO, file)}: every link, anchor and repository path resolves, nothing outside the repository`, () => {
      const found = docProblems(file, readFileSync(file, 'utf8'), REPO).map((p) => `${relative(REPO, file)}:${p.line}: ${p.problem}`);
      expect(found).toEqual([]);
    });
  }
});

describe('the checker fails on what it must catch', () => {
  const file = join(REPO, 'docs', 'example.md');
  const problems = (md: string) => docProblems(file, md, REPO).map((p) => p.problem);

  it('a link to a missing file, a missing anchor, a link leaving the repository, an absolute link', () => {
    expect(problems('[a](missing.md)')).toEqual(['missing.md: docs/missing.md does not exist']);
    expect(problems('[a](orders.md#no-such-heading)')).toEqual(['orders.md#no-such-heading: no heading #no-such-heading in docs/orders.md']);
    expect(problems('[a](../../etc/passwd)')).toEqual(['../../etc/passwd: points outside the repository']);
    expect(problems('[a](/etc/passwd)')).toEqual(['/etc/passwd: an absolute path, not a link inside the repository']);
    expect(problems('# Top\n[a](#nowhere)')).toEqual(['#nowhere: no heading #nowhere in docs/example.md']);
  });

  it('a repository path that does not exist, in text or in a code block', () => {
    expect(problems('see `src/heal/no-such-file.ts`')).toEqual(['src/heal/no-such-file.ts: no such path in the repository']);
    expect(problems('```sh\nnode --import tsx demo/gone.ts\n```')).toEqual(['demo/gone.ts: no such path in the repository']);
    expect(problems('the `bench/gone/` folder')).toEqual(['bench/gone/: no such path in the repository']);
  });

  it('references to documents outside the repository', () => {
    expect(problems('as ../shared/DESIGN.md says')).toHaveLength(2);
    expect(problems('see DESIGN 5.4')).toHaveLength(1);
    expect(problems('fixed in issue 9')).toHaveLength(1);
  });

  it('accepts what resolves: files, folders, anchors (GitHub spelling), URLs, headings inside fences ignored', () => {
    expect(problems('[a](orders.md#rejection-reasons) [b](../src/) [c](https://example.com/x) `src/orders/` `examples/config.json`')).toEqual([]);
    expect(problems("## The healer's `heal-apply`: root\n[x](#the-healers-heal-apply-root)")).toEqual([]);
    expect(problems('## A\n## A\n[x](#a-1)')).toEqual([]);
    expect(problems('```sh\n# not a heading\n```\n[x](#not-a-heading)')).toEqual(['#not-a-heading: no heading #not-a-heading in docs/example.md']);
  });
});
