import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { resolvePublicKeyArg, type PublicKey } from '../crypto/index.js';
import { readStoredReceipts, verifyPath, type VerifyOptions } from '../evidence/index.js';
import { openStateDb } from '../state/index.js';
import { parseCommandArgs } from './config-arg.js';
import { EXIT, type Command } from './command.js';
import { printError } from './output.js';
import { progress } from './progress.js';

const HEAD_RE = /^sha256:[0-9a-f]{64}$/;

function isSqlite(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(16);
    return readSync(fd, head, 0, 16, 0) === 16 && head.toString('latin1') === 'SQLite format 3\0';
  } finally {
    closeSync(fd);
  }
}

/** Receipts from the agent's state database (table receipts) or a file of receipt envelopes, one JSON per line. */
function readReceipts(path: string): string[] {
  if (isSqlite(path)) {
    const db = openStateDb(path, { readonly: true });
    try {
      return readStoredReceipts(db);
    } finally {
      db.close();
    }
  }
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

export const verifyCommand: Command = {
  name: 'verify',
  summary: 'verify an evidence envelope, or a directory of them, their hash chain and its ends, and the MCP receipts for them, offline',
  usage: [
    'compliance-agent verify PATH --pubkey KEY [--pubkey KEY2 ...] [--head sha256:HEX ...] [--receipts STATE.db|RECEIPTS.jsonl --mcp-key KEY ...] [--json]',
    '  KEY is name:base64, a .pub file or an SPKI PEM file; --head is a chain head the auditor got from the MSP;',
    '  --receipts proves which bundles the MCP acknowledged (its newest receipt is an expected head too)',
  ].join('\n'),
  async run(args) {
    const p = parseCommandArgs(args, this.usage, {
      pubkey: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      head: { type: 'string', multiple: true },
      receipts: { type: 'string' },
      'mcp-key': { type: 'string', multiple: true },
    });
    if (!p.ok) return p.code;
    const { parsed } = p;
    const [path, ...extra] = parsed.positionals;
    if (!path || extra.length > 0 || !parsed.values.pubkey?.length) {
      printError(`usage: ${this.usage}`);
      return EXIT.usage;
    }
    const badHead = parsed.values.head?.find((h) => !HEAD_RE.test(h));
    if (badHead !== undefined) {
      printError(`--head ${JSON.stringify(badHead)}: must be sha256: and 64 lowercase hex digits (the envelope hash, as status and the receipts show it)`);
      return EXIT.usage;
    }
    if (parsed.values.receipts && !parsed.values['mcp-key']?.length) {
      printError('--receipts needs --mcp-key: the MCP receipt public key(s) the receipts must be countersigned with');
      return EXIT.usage;
    }
    for (const p of [path, ...(parsed.values.receipts ? [parsed.values.receipts] : [])]) {
      if (!existsSync(p)) {
        printError(`${p}: no such file or directory`);
        return EXIT.usage;
      }
    }
    let keys: PublicKey[];
    let options: VerifyOptions;
    try {
      keys = parsed.values.pubkey.map(resolvePublicKeyArg);
      const receipts = parsed.values.receipts;
      options = {
        heads: parsed.values.head ?? [],
        ...(receipts ? { receipts: { source: receipts, envelopes: readReceipts(receipts), mcpKeys: (parsed.values['mcp-key'] ?? []).map(resolvePublicKeyArg) } } : {}),
      };
    } catch (e) {
      printError(e);
      return EXIT.usage;
    }
    const bar = progress(parsed.values);
    const report = verifyPath(path, keys, { ...options, onProgress: (done, total) => bar.show(`verifying ${done}/${total} envelope(s) in ${path}`, done === total) });
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
          {
            ok: report.ok,
            verified: report.verified.length,
            findings: report.findings.map((f) => ({ kind: f.kind, file: f.file, message: f.message })),
            hosts: report.hosts,
            receipts: report.receipts,
          },
          null,
          2,
        ) + '\n',
      );
    } else {
      for (const f of report.findings) process.stdout.write(`FAIL ${f.kind}: ${f.message}\n`);
      for (const h of report.hosts) {
        process.stdout.write(`host ${h.hostId}: ${h.count} bundle(s), seq ${h.first}..${h.last}, head ${h.headHash}\n`);
      }
      const r = report.receipts;
      if (r) {
        process.stdout.write(
          `receipts: ${r.checked} checked, ${r.acknowledged} bundle(s) in the chain acknowledged by the MCP, ${r.forPruned} for pruned bundles` +
            (r.newest ? `; newest acknowledged: host ${r.newest.hostId} seq ${r.newest.seq} ${r.newest.envelopeHash}` : '') +
            '\n',
        );
      }
      process.stdout.write(
        report.ok
          ? `OK: ${report.verified.length} envelope(s) verified${report.hosts.length ? ', chain intact' : ''}\n`
          : `FAILED: ${report.findings.length} problem(s), ${report.verified.length} envelope(s) verified\n`,
      );
    }
    return report.ok ? EXIT.ok : EXIT.failed;
  },
};
