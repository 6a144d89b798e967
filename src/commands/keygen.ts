import { generateKeyFiles } from '../crypto/index.js';
import { EXIT, type Command } from './command.js';
import { printError } from './output.js';

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'generate an Ed25519 key pair (NAME.key 0600, NAME.pub, NAME.pub.pem)',
  usage: 'compliance-agent keygen NAME DIR',
  async run(args) {
    const [name, dir, ...rest] = args;
    if (!name || !dir || rest.length > 0) {
      printError(`usage: ${this.usage}`);
      return EXIT.usage;
    }
    try {
      const out = generateKeyFiles(name, dir);
      process.stdout.write(`secret key: ${out.secretPath} (mode 0600)\npublic key: ${out.publicPath}\npublic PEM: ${out.publicPemPath}\n${out.publicKey}\n`);
      return EXIT.ok;
    } catch (e) {
      printError(e);
      return EXIT.failed;
    }
  },
};
