import { enroll } from '../identity/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';

export const enrollCommand: Command = {
  name: 'enroll',
  summary: 'enroll this appliance with a one-time site token: make its keys here, get its mTLS certificate from the MCP',
  usage:
    'compliance-agent enroll --config C --token-file F [--ca-file CA] [--keep-token]\n' +
    '  keys go to signingKeyFile and clientKeyFile (0600), the certificate to clientCertFile;\n' +
    '  the token file is deleted once the certificate is stored (--keep-token: the caller deletes\n' +
    '  it, as the NixOS unit does with the original of its read-only copy). Rerun after a failure: it resumes.',
  async run(args) {
    const p = parseWithConfig(args, this.usage, { 'token-file': { type: 'string' }, 'ca-file': { type: 'string' }, 'keep-token': { type: 'boolean' } });
    if (!p.ok) return p.code;
    const tokenFile = p.values['token-file'];
    const caFile = p.values['ca-file'];
    if (typeof tokenFile !== 'string') {
      printError(`--token-file is required\nusage: ${this.usage}`);
      return EXIT.usage;
    }
    try {
      const out = await enroll({ config: p.config, tokenFile, removeToken: p.values['keep-token'] !== true, ...(typeof caFile === 'string' ? { caFile } : {}) });
      if (out.kind === 'already_enrolled') {
        process.stdout.write(`already enrolled: certificate ${out.serial}, valid until ${out.notAfter}\n`);
      } else {
        const r = out.record;
        process.stdout.write(
          `enrolled ${r.site_id}/${r.host_id} at ${r.mcp_url}\n` +
            `  machine id     ${r.machine_id}\n` +
            `  evidence key   ${r.evidence_key} (${r.evidence_key_fingerprint})\n` +
            `  certificate    ${r.certificate_serial}, valid until ${r.certificate_not_after}\n`,
        );
      }
      if (typeof out.tokenRemoved === 'object') {
        process.stderr.write(`note: the token file ${tokenFile} could not be deleted (${out.tokenRemoved.failed}); it is used up, delete it\n`);
      }
      return EXIT.ok;
    } catch (e) {
      printError(e);
      return EXIT.failed;
    }
  },
};
