import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';
import { build } from 'esbuild';
import { agentBundleOptions } from '../../scripts/agent-bundle.mjs';

const REPO = resolve(import.meta.dirname, '..', '..');
const rel = (abs: string): string => relative(REPO, abs).split(sep).join('/');

function tsFiles(dir: string): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => `${dir}/${f.split(sep).join('/')}`)
    .sort();
}

/** Every module specifier a file names: imports and exports (type-only included, as madge counts them), and import(). */
function specifiers(file: string): string[] {
  return ts.preProcessFile(readFileSync(join(REPO, file), 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

/** A relative specifier as the repository file it names (`./x.js` is `./x.ts` under NodeNext); null for packages and node: builtins. */
function resolveSpecifier(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const abs = resolve(REPO, dirname(from), spec);
  const ts = abs.replace(/\.js$/, '.ts');
  return rel(existsSync(ts) ? ts : abs);
}

/** What each of `files` imports among them. */
function importGraph(files: string[]): Map<string, string[]> {
  const inSet = new Set(files);
  return new Map(
    files.map((f) => [
      f,
      specifiers(f)
        .map((s) => resolveSpecifier(f, s))
        .filter((t): t is string => t !== null && inSet.has(t)),
    ]),
  );
}

/** The cycles of a graph, each as the path that closes it (depth-first, one report per back edge). */
function cycles(edges: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of edges.get(f) ?? []) {
      if (state.get(t) === 'open') found.push([...stack.slice(stack.indexOf(t)), t]);
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of edges.keys()) if (!state.has(f)) visit(f);
  return found;
}

/** The classes and functions the test doubles declare: none of them may turn up in the product. */
const DOUBLE_NAMES = [
  ...new Set(tsFiles('testing').flatMap((f) => [...readFileSync(join(REPO, f), 'utf8').matchAll(/^export (?:async )?(?:function|class) ([A-Za-z0-9_$]+)/gm)].map((m) => m[1]!))),
].sort();

/** The declarations of test-double names in a piece of code (TypeScript source or esbuild's output, which keeps names). */
function doubleDeclarations(code: string): string[] {
  return DOUBLE_NAMES.filter((n) => new RegExp(`\\b(?:class|function\\*?)\\s+${n.replace(/\$/g, '\\$')}\\d*\\b`).test(code));
}

describe('the product stays apart from its test doubles', () => {
  const src = tsFiles('src');

  it('finds the sources and the test doubles it checks', () => {
    expect(src).toContain('src/cli.ts');
    expect(src).toContain('src/host/index.ts');
    expect(DOUBLE_NAMES).toEqual(expect.arrayContaining(['SimulatedHost', 'simulatedAppliance', 'startReferenceMcp', 'generatePki', 'startHarness']));
  });

  it('no file under src/ imports from testing/, demo/, test/ or bench/', () => {
    const offenders = src.flatMap((f) =>
      specifiers(f)
        .map((s) => resolveSpecifier(f, s))
        .filter((t): t is string => t !== null && /^(testing|demo|test|bench)\//.test(t))
        .map((t) => `${f} -> ${t}`),
    );
    expect(offenders).toEqual([]);
  });

  it('the files under src/ import one another without a cycle', () => {
    expect(cycles(importGraph(src)).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('the cycle finder sees cycles, through type-only imports and re-exports too', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c', 'd']],
      ['c', ['a']],
      ['d', []],
    ]);
    expect(cycles(graph)).toEqual([['a', 'b', 'c', 'a']]);
    expect(specifiers('src/host/index.ts')).toEqual(expect.arrayContaining(['./host.js', './real-host.js']));
  });

  it('dist/ (tsconfig.build.json) compiles src/ only, and nothing in it declares a test double', () => {
    const parsed = ts.getParsedCommandLineOfConfigFile(
      join(REPO, 'tsconfig.build.json'),
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => {
          throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
        },
      },
    );
    const built = (parsed?.fileNames ?? []).map(rel);
    expect(built).toContain('src/cli.ts');
    expect(built.filter((f) => !f.startsWith('src/'))).toEqual([]);
    expect(built.flatMap((f) => doubleDeclarations(readFileSync(join(REPO, f), 'utf8')).map((n) => `${f}: ${n}`))).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files.filter((f) => /^(testing|demo|test|bench|src)\b/.test(f))).toEqual([]);
  });

  it("the agent's bundle (the graph of src/cli.ts, lazy chunks included) holds no test double", async () => {
    const result = await build({ ...agentBundleOptions(REPO, join(REPO, 'dist', 'bundle')), write: false, logLevel: 'silent' });
    const ours = Object.keys(result.metafile.inputs).filter((f) => !/(^|\/)node_modules\//.test(f));
    expect(ours).toContain('src/host/real-host.ts');
    expect(ours.filter((f) => !f.startsWith('src/'))).toEqual([]);
    expect(ours.flatMap((f) => doubleDeclarations(readFileSync(join(REPO, f), 'utf8')).map((n) => `${f}: ${n}`))).toEqual([]);
    expect(result.outputFiles.flatMap((o) => doubleDeclarations(o.text).map((n) => `${rel(o.path)}: ${n}`))).toEqual([]);
  });
});
