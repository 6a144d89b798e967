import type { Command } from './command.js';

/**
 * Every sub-command, in the order `help` lists them, each loaded only when it runs: starting the
 * agent (`run`) must not pay for the imports of `egress-refresh` or `order sign` (cold start to the
 * first poll is a budget, bench/cold-start.ts). Add a command by adding its module here.
 */
const LOADERS: readonly (readonly [string, () => Promise<Command>])[] = [
  ['run', async () => (await import('./run.js')).runCommand],
  ['once', async () => (await import('./run.js')).onceCommand],
  ['status', async () => (await import('./status.js')).statusCommand],
  ['check', async () => (await import('./check.js')).checkCommand],
  ['verify', async () => (await import('./verify.js')).verifyCommand],
  ['keygen', async () => (await import('./keygen.js')).keygenCommand],
  ['enroll', async () => (await import('./enroll.js')).enrollCommand],
  ['rotate-key', async () => (await import('./rotate-key.js')).rotateKeyCommand],
  ['order', async () => (await import('./order.js')).orderCommand],
  ['heal-apply', async () => (await import('./heal-apply.js')).healApplyCommand],
  ['prune', async () => (await import('./prune.js')).pruneCommand],
  ['dead-letters', async () => (await import('./dead-letters.js')).deadLettersCommand],
  ['egress-refresh', async () => (await import('./egress-refresh.js')).egressRefreshCommand],
];

export const COMMAND_NAMES: readonly string[] = LOADERS.map(([name]) => name);

export async function loadCommand(name: string): Promise<Command | null> {
  const entry = LOADERS.find(([n]) => n === name);
  return entry ? entry[1]() : null;
}

/** All of them, for `help`. */
export function loadCommands(): Promise<Command[]> {
  return Promise.all(LOADERS.map(([, load]) => load()));
}

export type { Command } from './command.js';
export { EXIT } from './command.js';
export { printError } from './output.js';
