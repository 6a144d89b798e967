import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { resolvePublicKeyArg, type PublicKey } from '../crypto/index.js';
import { verifyPath } from '../evidence/index.js';
import { EXIT, type Command } from './command.js';
import { printError } from './output.js';
import { progress } from './progress.js';

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'verify an evidence envelope, or a directory of them and their hash chain, offline',
  usage: 'compliance-agent verify PATH --pubkey KEY [--pubkey KEY2 ...] [--json]\n  KEY is name:base64, a .pub file or an SPKI PEM file',
  async run(args) {
    let parsed;
    try {
      parsed = parseArgs({ args, allowPositionals: true, options: { pubkey: { type: 'string', multiple: true }, json: { type: 'boolean' } } });
    } catch (e) {
      printError(`${(e as Error).message}\nusage: ${this.usage}`);
      return EXIT.usage;
    }
    const [path, ...extra] = parsed.positionals;
    if (!path || extra.length > 0 || !parsed.values.pubkey?.length) {
      printError(`usage: ${this.usage}`);
      return EXIT.usage;
    }
    if (!existsSync(path)) {
      printError(`${path}: no such file or directory`);
      return EXIT.usage;
    }
    let keys: PublicKey[];
    try {
      keys = parsed.values.pubkey.map(resolvePublicKeyArg);
    } catch (e) {
      printError(e);
      return EXIT.usage;
    }
    const bar = progress(parsed.values);
    const report = verifyPath(path, keys, (done, total) => bar.show(`verifying ${done}/${total} envelope(s) in ${path}`, done === total));
    bar.clear();
    if (report.verified.length === 0 && report.findings.length === 0) {
      // Nothing to verify is a failure (an auditor handed an empty directory proved nothing), said once.
      if (parsed.values.json) process.stdout.write(JSON.stringify({ ok: false, verified: 0, findings: [], hosts: [], error: 'no evidence envelopes found' }, null, 2) + '\n');
      else process.stdout.write(`FAIL: no evidence envelopes (*.json) found in ${path}\n`);
      return EXIT.failed;
    }
    if (parsed.values.json) {
      process.stdout.write(
        JSON.stringify(
          { ok: report.ok, verified: report.verified.length, findings: report.findings.map((f) => ({ kind: f.kind, file: f.file, message: f.message })), hosts: report.hosts },
          null,
          2,
        ) + '\n',
      );
    } else {
      for (const f of report.findings) process.stdout.write(`FAIL ${f.kind}: ${f.message}\n`);
      for (const h of report.hosts) {
        process.stdout.write(`host ${h.hostId}: ${h.count} bundle(s), seq ${h.first}..${h.last}, head ${h.headHash}\n`);
      }
      process.stdout.write(report.ok ? `OK: ${report.verified.length} envelope(s) verified${report.hosts.length ? ', chain intact' : ''}\n` : `FAILED: ${report.findings.length} problem(s), ${report.verified.length} envelope(s) verified\n`);
    }
    return report.ok ? EXIT.ok : EXIT.failed;
  },
};
