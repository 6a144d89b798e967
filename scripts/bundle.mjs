// The shipped agent: src/cli.ts bundled by esbuild into dist/bundle/ (ESM), started by
// bin/compliance-agent with the V8 flags in bin/node-flags. One module graph instead of ~150 files
// lowers the live heap and the start time; commands and execa stay in chunks loaded on first use.
// better-sqlite3 (a native addon) and undici (loaded by path from node_modules, see
// src/delivery/undici-agent.ts) are resolved at run time from the package's node_modules.
// dist/bundle sits two levels under the package root, as dist/src/common does, so
// src/common/version.ts finds package.json from either.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { agentBundleOptions } from './agent-bundle.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/bundle`;
rmSync(outdir, { recursive: true, force: true });
const result = await build(agentBundleOptions(root, outdir));
// `import { z } from 'zod'` keeps the whole namespace object, with every locale (~580 KB);
// `import * as z from 'zod'` lets esbuild keep what is used. Fail rather than ship them again.
const locales = Object.values(result.metafile.outputs)
  .flatMap((o) => Object.entries(o.inputs))
  .filter(([f, i]) => i.bytesInOutput > 0 && /zod\/v4\/locales\/(?!en\.js$)[^/]+\.js$/.test(f));
if (locales.length > 0) {
  console.error(`scripts/bundle.mjs: zod's locales are in the bundle (${locales.length} files): import zod as \`import * as z from 'zod'\` everywhere`);
  process.exit(1);
}
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`dist/bundle: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KB`);
