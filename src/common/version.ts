import { readFileSync } from 'node:fs';

function readVersion(): string {
  // package.json sits two levels up from both src/common (tsx) and dist/src/common (built).
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'compliance-agent' && pkg.version) return pkg.version;
    } catch {
      // try the next candidate location
    }
  }
  return '0.0.0-unknown';
}

export const AGENT_VERSION = readVersion();
