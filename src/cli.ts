#!/usr/bin/env node
import { EXIT, loadCommand, loadCommands, printError, type Command } from './commands/index.js';
// Not common/index.js: `--version` and `help` need no logger or HTTP pool (bench/cold-start.ts).
import { AGENT_VERSION } from './common/version.js';

function help(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `compliance-agent ${AGENT_VERSION}: self-healing compliance agent for NixOS appliances`,
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'compliance-agent help COMMAND shows its usage.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const target = rest[0] ? await loadCommand(rest[0]) : null;
    process.stdout.write((target ? `${target.usage}\n${target.summary}` : help(await loadCommands())) + '\n');
    return EXIT.ok;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return EXIT.ok;
  }
  const command = await loadCommand(name);
  if (!command) {
    printError(`unknown command "${name}"\n\n${help(await loadCommands())}`);
    return EXIT.usage;
  }
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    printError(e);
    process.exitCode = EXIT.failed;
  },
);
