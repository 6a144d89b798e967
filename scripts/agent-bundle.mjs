// The esbuild options of the shipped agent (dist/bundle): scripts/bundle.mjs builds with them, and
// test/architecture/boundaries.test.ts builds with them in memory to see what the bundle holds.
export function agentBundleOptions(root, outdir) {
  return {
    absWorkingDir: root,
    entryPoints: { 'compliance-agent': 'src/cli.ts' },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outdir,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    external: ['better-sqlite3', 'undici'],
    // Bundled CommonJS (pino) calls require(); ESM has none of its own.
    banner: { js: "import { createRequire as __agentRequire } from 'node:module'; const require = __agentRequire(import.meta.url);" },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  };
}
