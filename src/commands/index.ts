import type { Command } from './command.js';
import { keygenCommand } from './keygen.js';
import { verifyCommand } from './verify.js';
import { statusCommand } from './status.js';
import { orderCommand } from './order.js';
import { checkCommand } from './check.js';

/** Every sub-command, in the order `help` lists them. Add a command by adding its module here. */
export const COMMANDS: readonly Command[] = [keygenCommand, verifyCommand, statusCommand, orderCommand, checkCommand];

export type { Command } from './command.js';
export { EXIT } from './command.js';
