import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { ExecOptions, ExecResult, FileStat, Host, ReadResult } from './host.js';
import { DEFAULT_MAX_READ_BYTES, linkTarget, readFileBounded, resolvedPath, statPath } from './fs-read.js';
import { describeOutcome, groupDeadline, killGroup } from './process-outcome.js';
import { spawnLight } from './spawn-light.js';

/** PATH when the agent's own environment has none; the NixOS system profile first. */
const FALLBACK_PATH = '/run/wrappers/bin:/run/current-system/sw/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RealHostOptions {
  /** Cap on each of stdout and stderr; a process writing more is killed. Default 4 MiB. */
  readonly maxOutputBytes?: number;
  /** Between SIGTERM at the timeout and SIGKILL. Default 2 s. */
  readonly killGraceMs?: number;
  /** PATH the commands run with. Default: the agent's PATH. */
  readonly path?: string;
  /**
   * Names of further variables to pass through from this process (the healer passes HOME,
   * NIX_PATH, proxy and CA variables to nixos-rebuild). Nothing else of the environment leaks.
   */
  readonly passEnv?: readonly string[];
}

/** What nixos-rebuild needs from the healer's unit environment to fetch and build a flake. */
export const REBUILD_ENV: readonly string[] = [
  'HOME',
  'NIX_PATH',
  'NIX_REMOTE',
  'NIX_SSL_CERT_FILE',
  // nix.conf with access-tokens for private flakes (the module's nixAccessTokensFile credential).
  'NIX_USER_CONF_FILES',
  'SSL_CERT_FILE',
  'http_proxy',
  'https_proxy',
  'all_proxy',
  'no_proxy',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
];

/**
 * The Host port on the real machine: execa without a shell (node:child_process alone for a query
 * run every cycle, with the same limits), bounded reads, the real clock.
 */
export class RealHost implements Host {
  private readonly maxOutputBytes: number;
  private readonly killGraceMs: number;
  private readonly env: Record<string, string>;

  constructor(options: RealHostOptions = {}) {
    this.maxOutputBytes = options.maxOutputBytes ?? 4 * 1024 * 1024;
    this.killGraceMs = options.killGraceMs ?? 2000;
    // A minimal environment: nothing of the agent's (credential paths, tokens) leaks into children,
    // and LC_ALL=C keeps the output formats the checks parse stable.
    const passed = (options.passEnv ?? []).flatMap((name) => {
      const value = process.env[name];
      return value === undefined ? [] : [[name, value] as const];
    });
    this.env = { ...Object.fromEntries(passed), PATH: options.path ?? process.env.PATH ?? FALLBACK_PATH, LC_ALL: 'C' };
  }

  async exec(command: string, args: readonly string[], options: ExecOptions): Promise<ExecResult> {
    if (options.everyCycle && options.input === undefined) {
      const o = await spawnLight(command, args, { env: this.env, timeoutMs: options.timeoutMs, killGraceMs: this.killGraceMs, maxOutputBytes: this.maxOutputBytes });
      return describeOutcome(command, o, this.maxOutputBytes);
    }
    // Loaded on first use: the agent's first poll does not wait for execa's ~50 ms of imports.
    const { execa } = await import('execa');
    const started = performance.now();
    // Its own process group, so a timeout kills everything it started: a hung nixos-rebuild's
    // children would otherwise keep the pipes open (and the call waiting) after the parent died.
    const subprocess = execa(command, [...args], {
      reject: false,
      shell: false,
      detached: true,
      maxBuffer: this.maxOutputBytes,
      env: this.env,
      extendEnv: false,
      stdin: options.input === undefined ? 'ignore' : 'pipe',
      ...(options.input === undefined ? {} : { input: options.input }),
      stripFinalNewline: false,
      encoding: 'utf8',
    });
    const deadline = groupDeadline(subprocess.pid, options.timeoutMs, this.killGraceMs);
    const r = await subprocess;
    const timedOut = deadline.settle();
    if (r.isMaxBuffer) killGroup(subprocess.pid, 'SIGKILL');
    const startError = r.failed && 'code' in r && typeof r.code === 'string' && r.exitCode === undefined ? r.code : null;
    return describeOutcome(
      command,
      {
        stdout: typeof r.stdout === 'string' ? r.stdout : '',
        stderr: typeof r.stderr === 'string' ? r.stderr : '',
        durationMs: Math.round(performance.now() - started),
        timedOut,
        startError,
        startMessage: 'shortMessage' in r ? String(r.shortMessage) : 'could not be started',
        overflowed: r.isMaxBuffer,
        signal: r.signal ?? null,
        exitCode: typeof r.exitCode === 'number' ? r.exitCode : null,
      },
      this.maxOutputBytes,
    );
  }

  readFile(path: string, maxBytes = DEFAULT_MAX_READ_BYTES): Promise<ReadResult> {
    return readFileBounded(path, maxBytes);
  }

  stat(path: string): Promise<FileStat | null> {
    return statPath(path);
  }

  readlink(path: string): Promise<string | null> {
    return linkTarget(path);
  }

  realpath(path: string): Promise<string | null> {
    return resolvedPath(path);
  }

  now(): number {
    return Date.now();
  }

  hostname(): string {
    return hostname();
  }
}
