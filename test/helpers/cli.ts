import { execFile } from 'node:child_process';

/** node arguments that run the CLI from source. */
export const CLI = ['--import', 'tsx', 'src/cli.ts'];

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run `compliance-agent ARGS` in a child. Async on purpose: a reference MCP in the test's own
 * process must keep answering while the child talks to it.
 */
export function cli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...CLI, ...args], { encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}
