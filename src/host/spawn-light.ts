import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { groupDeadline, killGroup, type ProcessOutcome } from './process-outcome.js';

export interface LightSpawnOptions {
  readonly env: Record<string, string>;
  readonly timeoutMs: number;
  readonly killGraceMs: number;
  readonly maxOutputBytes: number;
}

/**
 * A command with no input through node:child_process alone, for the query the agent runs every
 * cycle: execa costs about 2.5 ms of the agent's CPU per command, this about 0.85 ms
 * (bench/RESULTS.md). The guarantees are RealHost's: no shell, its own process group killed at the
 * timeout (SIGTERM, then SIGKILL), output capped at maxOutputBytes per stream (the group is killed
 * past it), the environment given and nothing else.
 */
export function spawnLight(command: string, args: readonly string[], options: LightSpawnOptions): Promise<ProcessOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { shell: false, detached: true, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const deadline = groupDeadline(child.pid, options.timeoutMs, options.killGraceMs);
    let overflowed = false;
    let startError: NodeJS.ErrnoException | null = null;
    const collect = (stream: NodeJS.ReadableStream) => {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        if (overflowed) return;
        if (size + chunk.length > options.maxOutputBytes) {
          chunks.push(chunk.subarray(0, options.maxOutputBytes - size));
          overflowed = true;
          killGroup(child.pid, 'SIGKILL');
          return;
        }
        chunks.push(chunk);
        size += chunk.length;
      });
      return () => Buffer.concat(chunks).toString('utf8');
    };
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    child.on('error', (e: NodeJS.ErrnoException) => (startError ??= e));
    // 'close': the process exited and both pipes are closed (a spawn error closes them too).
    child.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      const timedOut = deadline.settle();
      if (overflowed) killGroup(child.pid, 'SIGKILL');
      resolve({
        stdout: stdout(),
        stderr: stderr(),
        durationMs: Math.round(performance.now() - started),
        timedOut,
        startError: startError ? (startError.code ?? 'error') : null,
        startMessage: startError ? `could not be started (${startError.code ?? startError.message})` : 'could not be started',
        overflowed,
        signal: startError ? null : signal,
        exitCode: startError ? null : code,
      });
    });
  });
}
