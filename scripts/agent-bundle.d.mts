import type { BuildOptions } from 'esbuild';

export function agentBundleOptions(root: string, outdir: string): BuildOptions & { metafile: true };
