import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/index.js';
import { errnoCode } from '../common/index.js';

/**
 * Where the appliance's identity lives: the three files config.json names, plus the enrollment
 * record and the in-between files of a renewal or a key rotation beside them.
 */
export interface IdentityPaths {
  readonly signingKey: string;
  readonly tlsKey: string;
  readonly cert: string;
  /** What was enrolled, for the enrollment evidence; written before the certificate. */
  readonly record: string;
  readonly tlsKeyPending: string;
  readonly certPending: string;
  /** Written once the pending pair worked against the MCP: from here on, the renewal is committed. */
  readonly renewalCommit: string;
  /** A staged evidence key; the agent introduces it with a rotation bundle signed by the current key. */
  readonly signingKeyNext: string;
}

export function identityPaths(config: Pick<Config, 'signingKeyFile' | 'clientKeyFile' | 'clientCertFile'>): IdentityPaths {
  return {
    signingKey: config.signingKeyFile,
    tlsKey: config.clientKeyFile,
    cert: config.clientCertFile,
    record: join(dirname(config.clientCertFile), 'enrollment.json'),
    tlsKeyPending: `${config.clientKeyFile}.pending`,
    certPending: `${config.clientCertFile}.pending`,
    renewalCommit: `${config.clientCertFile}.renewal-commit`,
    signingKeyNext: `${config.signingKeyFile}.next`,
  };
}

export function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return false;
    throw e;
  }
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Private directories for the identity: created 0700 when missing, never loosened when present. */
export function ensureDirs(paths: readonly string[]): void {
  for (const p of new Set(paths.map((x) => dirname(x)))) mkdirSync(p, { recursive: true, mode: 0o700 });
}

/** Rename with the directory synced, so a renamed identity file survives a power cut. */
export function renameDurable(from: string, to: string): void {
  renameSync(from, to);
  syncDir(dirname(to));
}

export function removeDurable(path: string): void {
  rmSync(path, { force: true });
  syncDir(dirname(path));
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
