import type { Command } from './command.js';
import { keygenCommand } from './keygen.js';
import { verifyCommand } from './verify.js';
import { statusCommand } from './status.js';
import { runCommand, onceCommand } from './run.js';
import { pruneCommand } from './prune.js';
import { orderCommand } from './order.js';
import { healApplyCommand } from './heal-apply.js';
import { checkCommand } from './check.js';
import { egressRefreshCommand } from './egress-refresh.js';

/** Every sub-command, in the order `help` lists them. Add a command by adding its module here. */
export const COMMANDS: readonly Command[] = [
  runCommand,
  onceCommand,
  statusCommand,
  checkCommand,
  verifyCommand,
  keygenCommand,
  orderCommand,
  healApplyCommand,
  pruneCommand,
  egressRefreshCommand,
];

export type { Command } from './command.js';
export { EXIT } from './command.js';
