#!/usr/bin/env node
import { COMMANDS, EXIT } from './commands/index.js';
import { AGENT_VERSION } from './common/index.js';
import { printError } from './commands/output.js';

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `compliance-agent ${AGENT_VERSION}: self-healing compliance agent for NixOS appliances`,
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'compliance-agent help COMMAND shows its usage.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const target = rest[0] && COMMANDS.find((c) => c.name === rest[0]);
    process.stdout.write((target ? `${target.usage}\n${target.summary}` : help()) + '\n');
    return EXIT.ok;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    printError(`unknown command "${name}"\n\n${help()}`);
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
    process.exitCode = 1;
  },
);
