/**
 * The MCP node of the NixOS VM test (nixosTests/compliance-agent.nix): the reference MCP from
 * testing/, with
 *   - a PKI made on first start for the name the appliance dials (DIR/pki/, testing/pki.ts),
 *   - orders picked up from DIR/orders/*.json (signed envelopes, served FIFO; rename them into
 *     place, a half-written file is read once and refused),
 *   - every evidence bundle it accepted written to DIR/evidence/<bundle_id>.json,
 *   - with --enroll-site SITE: POST /enroll served, and one one-time token for SITE written to
 *     DIR/enrollment-token (0600) at start, for the test to hand to an appliance,
 * so the test script drives and inspects it with plain files.
 *
 * Usage: fake-mcp --dir DIR --server-name NAME --client-cn CN --agent-key KEY|FILE [--enroll-site SITE] [--port 443]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, describeError } from '../src/common/index.js';
import { EnvelopeSchema, resolvePublicKeyArg } from '../src/crypto/index.js';
import { generatePki, loadPki, startReferenceMcp } from '../testing/index.js';

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      dir: { type: 'string' },
      'server-name': { type: 'string', multiple: true, default: [] },
      'client-cn': { type: 'string' },
      'agent-key': { type: 'string' },
      'enroll-site': { type: 'string' },
      port: { type: 'string', default: '443' },
    },
  });
  if (!values.dir || !values['client-cn'] || !values['agent-key'] || values['server-name'].length === 0) {
    process.stderr.write('usage: fake-mcp --dir DIR --server-name NAME --client-cn CN --agent-key KEY|FILE [--enroll-site SITE] [--port 443]\n');
    return 2;
  }
  const dir = values.dir;
  const logger = createLogger('INFO');
  const pkiDir = join(dir, 'pki');
  const pki = (await loadPki(pkiDir)) ?? (await generatePki(pkiDir, { serverNames: values['server-name'], clientCn: values['client-cn'] }));
  const ordersDir = join(dir, 'orders');
  const evidenceDir = join(dir, 'evidence');
  mkdirSync(ordersDir, { recursive: true });
  mkdirSync(evidenceDir, { recursive: true });

  const enrollSite = values['enroll-site'];
  const mcp = await startReferenceMcp({
    pki,
    port: Number(values.port),
    host: '::',
    agentKeys: [resolvePublicKeyArg(values['agent-key'])],
    logger,
    ...(enrollSite ? { enrollment: {} } : {}),
  });
  if (enrollSite) writeFileSync(join(dir, 'enrollment-token'), `${mcp.enrollment!.issueToken(enrollSite)}\n`, { mode: 0o600 });
  const served = new Set<string>();
  const written = new Set<string>();

  const sync = (): void => {
    for (const file of readdirSync(ordersDir)
      .filter((f) => f.endsWith('.json'))
      .sort()) {
      if (served.has(file)) continue;
      served.add(file);
      try {
        mcp.enqueueOrder(EnvelopeSchema.parse(JSON.parse(readFileSync(join(ordersDir, file), 'utf8'))));
        logger.info({ file }, 'fake MCP queued an order');
      } catch (e) {
        logger.error({ file, err: describeError(e) }, 'fake MCP: not an order envelope');
      }
    }
    for (const [bundleId, stored] of mcp.evidence()) {
      if (written.has(bundleId)) continue;
      written.add(bundleId);
      writeFileSync(join(evidenceDir, `${bundleId}.json`), JSON.stringify(stored.bundle, null, 2) + '\n');
    }
  };
  const timer = setInterval(sync, 500);
  process.stdout.write(`${mcp.url}\n`);

  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  sync();
  await mcp.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`fake MCP: ${describeError(e)}\n`);
    process.exit(1);
  },
);
