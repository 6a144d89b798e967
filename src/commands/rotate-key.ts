import { formatPublicKey } from '../crypto/index.js';
import { stageKeyRotation } from '../identity/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';

export const rotateKeyCommand: Command = {
  name: 'rotate-key',
  summary: 'stage a new evidence-signing key; the agent introduces it with a bundle signed by the current key',
  usage: 'compliance-agent rotate-key --config C   (as the agent user; the running agent picks it up at its next cycle)',
  async run(args) {
    const p = parseWithConfig(args, this.usage, {});
    if (!p.ok) return p.code;
    try {
      const key = stageKeyRotation(p.config, Date.now());
      process.stdout.write(`staged ${p.config.signingKeyFile}.next (0600)\nnew evidence key ${formatPublicKey(key.keyId, key.publicKey)}\n`);
      return EXIT.ok;
    } catch (e) {
      printError(e);
      return EXIT.failed;
    }
  },
};
