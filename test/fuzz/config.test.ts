import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, expect, it } from 'vitest';
import { AgentError } from '../../src/common/index.js';
import { loadBaseline, loadConfig, parseBaseline, parseConfig, parsePinnedFlakeRef } from '../../src/config/index.js';
import { makeKey } from '../orders/fixtures.js';
import { tempDir } from '../helpers/tmp.js';
import { FUZZ_RUNS, isOneBoundedLine } from './sign.js';
import { fixedKeySeed, seeded } from '../helpers/fuzz.js';

// config.json and baseline.json, random and mutated from valid ones, through the agent's loaders.
// Properties: the only failure is an AgentError with one "path: problem" line per problem; nothing
// is accepted that an independent reading of the option table refuses.

const tmp = tempDir('ca-fuzz-config-');
afterAll(() => tmp.cleanup());

const VALID_CONFIG: Record<string, unknown> = {
  mcpUrl: 'https://mcp.msp.example:8443/api',
  allowedHosts: ['mcp.msp.example'],
  siteId: 'clinic-001',
  hostId: 'appliance-1',
  deploymentMode: 'direct',
  baselinePath: '/etc/compliance-agent/baseline.json',
  clientCertFile: '/run/credentials/compliance-agent.service/client.pem',
  clientKeyFile: '/run/credentials/compliance-agent.service/client.key',
  signingKeyFile: '/run/credentials/compliance-agent.service/signing.key',
  caFile: '/etc/compliance-agent/ca.pem',
  trustedOrderKeys: [makeKey('msp-2026', fixedKeySeed('msp-2026')).text],
};
const OPTIONAL: Record<string, unknown> = {
  resellerId: 'reseller-7',
  policyVersion: '2.1',
  pollInterval: 30,
  orderTtl: 600,
  maintenanceWindow: '22:00-02:00',
  allowDisruptiveOutsideWindow: true,
  evidenceRetention: 500,
  pruneRetentionDays: 30,
  ntpMaxSkewMs: 2000,
  rebuildHealthCheckTimeout: 120,
  logLevel: 'DEBUG',
  stateDir: '/var/lib/compliance-agent',
  heartbeatInterval: 900,
  webhookSecretFile: null,
  rmmWebhookUrl: null,
  syslogTarget: null,
  syslogCaFile: null,
};
const CONFIG_KEYS = [...Object.keys(VALID_CONFIG), ...Object.keys(OPTIONAL)];

const VALID_BASELINE = {
  version: 1,
  patching: {
    configurationRevision: '5880666aa0e1b2c3d4e5f60718293a4b5c6d7e8f',
    flakeRef: 'git+https://git.msp.example/sites/clinic-001?ref=main&rev=5880666aa0e1b2c3d4e5f60718293a4b5c6d7e8f#appliance',
  },
  services: { required: ['sshd.service', 'postgresql.service'] },
  backup: { unit: 'restic-backups-appliance.service', stampFile: '/var/backup/last-success.stamp', maxAgeHours: 26 },
  firewall: { rulesetHash: `sha256:${'ab'.repeat(32)}` },
  encryption: { requiredMounts: ['/', '/var/backup'] },
};

const weird = fc.oneof(
  fc.jsonValue(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    'relative/path',
    '/abs/path',
    'http://mcp.msp.example',
    'https://',
    'https://user:pw@mcp.msp.example',
    'ftp://x',
    '25:00-01:00',
    '02:00-04:00',
    'reseller',
    'direct',
    'tls://siem.example:6514',
    'udp://siem:514',
  ),
  fc.integer({ min: -10, max: 100_000 }),
  fc.double(),
  fc.constant('y'.repeat(5000)),
  fc.constant('\u0000\n\u202e'),
);

/** Mutations of a nested JSON document at a path chosen among its keys. */
type Mutation = { kind: 'none' } | { kind: 'delete'; path: string[] } | { kind: 'set'; path: string[]; value: unknown } | { kind: 'add'; path: string[]; value: unknown };
function mutation(paths: string[][]): fc.Arbitrary<Mutation> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant({ kind: 'none' as const }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), path: fc.constantFrom(...paths) }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), path: fc.constantFrom(...paths), value: weird }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('add' as const), path: fc.constantFrom(...paths).map((p) => [...p.slice(0, -1), 'unexpectedKey']), value: weird }) },
  );
}

function apply(doc: unknown, ms: Mutation[]): unknown {
  const copy = structuredClone(doc) as Record<string, unknown>;
  for (const m of ms) {
    if (m.kind === 'none') continue;
    let node: Record<string, unknown> | undefined = copy;
    for (const k of m.path.slice(0, -1)) node = typeof node?.[k] === 'object' && node[k] !== null ? (node[k] as Record<string, unknown>) : undefined;
    if (!node) continue;
    const last = m.path[m.path.length - 1]!;
    if (m.kind === 'delete') delete node[last];
    else node[last] = m.value;
  }
  return copy;
}

function leafPaths(doc: unknown, prefix: string[] = []): string[][] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [prefix];
  return [prefix, ...Object.entries(doc).flatMap(([k, v]) => leafPaths(v, [...prefix, k]))].filter((p) => p.length > 0);
}

/** Every failure is one AgentError with a line per problem, each "path: problem", bounded and printable. */
function expectExplained(e: unknown, code: string): void {
  expect(e).toBeInstanceOf(AgentError);
  const err = e as AgentError;
  expect(err.code).toBe(code);
  expect(isOneBoundedLine(err.message, 500)).toBe(true);
  expect(err.details.length).toBeGreaterThan(0);
  for (const line of err.details) {
    expect(isOneBoundedLine(line, 600), JSON.stringify(line).slice(0, 200)).toBe(true);
    expect(line).toMatch(/^[^:]+: \S/);
  }
}

const absolute = (v: unknown) => typeof v === 'string' && v.startsWith('/');
const ident = (v: unknown) => typeof v === 'string' && /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(v);
const posInt = (v: unknown, max = Infinity) => Number.isInteger(v) && (v as number) > 0 && (v as number) <= max;
function httpsHost(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' ? u.hostname : null;
  } catch {
    return null;
  }
}

/** The option table read independently of src/config: why an accepted config would be wrong, or null. */
function configProblem(raw: Record<string, unknown>): string | null {
  const unknown = Object.keys(raw).filter((k) => !CONFIG_KEYS.includes(k));
  if (unknown.length) return `unknown ${unknown.join(',')}`;
  // The nullable options default to null.
  const get = (k: string) => (k in raw ? raw[k] : null);
  const mcpHost = httpsHost(raw.mcpUrl ?? 'https://mcp.local');
  if (!mcpHost) return 'mcpUrl';
  const hosts = raw.allowedHosts ?? ['mcp.local'];
  if (!Array.isArray(hosts) || hosts.length === 0 || !hosts.every((h) => typeof h === 'string' && /^[A-Za-z0-9.-]{1,253}$/.test(h))) return 'allowedHosts';
  if (!hosts.includes(mcpHost)) return 'mcp host not allowed';
  if (!ident(raw.siteId) || ('hostId' in raw && !ident(raw.hostId))) return 'ids';
  const mode = raw.deploymentMode ?? 'reseller';
  if (mode !== 'reseller' && mode !== 'direct') return 'deploymentMode';
  if (mode === 'reseller' && !ident(raw.resellerId)) return 'resellerId';
  for (const k of ['baselinePath', 'clientCertFile', 'clientKeyFile', 'signingKeyFile', 'caFile']) if (!absolute(raw[k])) return k;
  if ('stateDir' in raw && !absolute(raw.stateDir)) return 'stateDir';
  if ('maintenanceWindow' in raw && !(typeof raw.maintenanceWindow === 'string' && /^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/.test(raw.maintenanceWindow)))
    return 'window';
  for (const [k, max] of [
    ['pollInterval', 86_400],
    ['orderTtl', 86_400],
    ['evidenceRetention', Infinity],
    ['ntpMaxSkewMs', Infinity],
    ['rebuildHealthCheckTimeout', 3600],
    ['heartbeatInterval', Infinity],
  ] as const) {
    if (k in raw && !posInt(raw[k], max)) return k;
  }
  if ('pruneRetentionDays' in raw && !(Number.isInteger(raw.pruneRetentionDays) && (raw.pruneRetentionDays as number) >= 0)) return 'pruneRetentionDays';
  if ('allowDisruptiveOutsideWindow' in raw && typeof raw.allowDisruptiveOutsideWindow !== 'boolean') return 'allowDisruptiveOutsideWindow';
  const keys = raw.trustedOrderKeys;
  if (!Array.isArray(keys) || keys.length === 0) return 'no trusted keys';
  for (const k of keys) {
    const m = typeof k === 'string' ? /^([A-Za-z0-9][A-Za-z0-9._-]{0,127}):([A-Za-z0-9+/]{43}=)$/.exec(k) : null;
    if (!m || Buffer.from(m[2]!, 'base64').length !== 32) return 'trusted key';
  }
  if (get('rmmWebhookUrl') !== null && !httpsHost(get('rmmWebhookUrl'))) return 'rmmWebhookUrl';
  if (get('webhookSecretFile') !== null && !absolute(get('webhookSecretFile'))) return 'webhookSecretFile';
  if (get('syslogCaFile') !== null && !absolute(get('syslogCaFile'))) return 'syslogCaFile';
  const syslog = get('syslogTarget');
  if (syslog !== null && !(typeof syslog === 'string' && /^(tcp|tls):\/\/.+:\d+$/.test(syslog))) return 'syslogTarget';
  return null;
}

function baselineProblem(raw: unknown): string | null {
  const b = raw as typeof VALID_BASELINE;
  const plain = (v: unknown, keys: string[]) => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).sort().join() === [...keys].sort().join();
  if (!plain(b, Object.keys(VALID_BASELINE)) || b.version !== 1) return 'shape';
  if (!plain(b.patching, ['configurationRevision', 'flakeRef']) || typeof b.patching.configurationRevision !== 'string' || !b.patching.configurationRevision) return 'patching';
  // `&` separates the query parameters of a pinned reference (ref=...&rev=...); the healer never uses a shell.
  if (typeof b.patching.flakeRef !== 'string' || !b.patching.flakeRef || /[\s;|`$]/.test(b.patching.flakeRef)) return 'flakeRef';
  // Pinned to the expected revision (the parser has its own table of refusals in test/orders and test/heal).
  const pinned = parsePinnedFlakeRef(b.patching.flakeRef);
  if (!pinned.ok || pinned.value.rev !== b.patching.configurationRevision) return 'flakeRef';
  const unit = (u: unknown) => typeof u === 'string' && /^[A-Za-z0-9@:._\\-]+\.(service|timer|socket|target|mount|path)$/.test(u);
  if (!plain(b.services, ['required']) || !Array.isArray(b.services.required) || !b.services.required.every(unit)) return 'services';
  if (!plain(b.backup, ['unit', 'stampFile', 'maxAgeHours']) || !unit(b.backup.unit) || !absolute(b.backup.stampFile)) return 'backup';
  if (typeof b.backup.maxAgeHours !== 'number' || !(b.backup.maxAgeHours > 0 && b.backup.maxAgeHours <= 8760)) return 'maxAgeHours';
  if (!plain(b.firewall, ['rulesetHash']) || !/^sha256:[0-9a-f]{64}$/.test(String(b.firewall.rulesetHash))) return 'firewall';
  if (!plain(b.encryption, ['requiredMounts']) || !Array.isArray(b.encryption.requiredMounts) || !b.encryption.requiredMounts.every(absolute)) return 'encryption';
  return null;
}

const configDoc = fc.oneof(
  { weight: 1, arbitrary: fc.jsonValue() },
  { weight: 1, arbitrary: fc.anything() },
  {
    weight: 8,
    arbitrary: fc
      .tuple(fc.subarray(Object.keys(OPTIONAL)), fc.array(mutation(CONFIG_KEYS.map((k) => [k])), { minLength: 1, maxLength: 3 }))
      .map(([extra, ms]) => apply({ ...VALID_CONFIG, ...Object.fromEntries(extra.map((k) => [k, OPTIONAL[k]])) }, ms)),
  },
);

it(`config.json: ${FUZZ_RUNS} random and mutated documents, nothing invalid accepted, every problem explained`, () => {
  let accepted = 0;
  fc.assert(
    fc.property(configDoc, (doc) => {
      let config;
      try {
        config = parseConfig(doc, 'config.json');
      } catch (e) {
        expectExplained(e, 'config_invalid');
        return;
      }
      accepted++;
      expect(configProblem(doc as Record<string, unknown>)).toBeNull();
      expect(config.siteId).toBe((doc as { siteId: string }).siteId);
    }),
    seeded('config documents', { numRuns: FUZZ_RUNS }),
  );
  expect(accepted).toBeGreaterThan(FUZZ_RUNS / 20);
});

const baselineDoc = fc.oneof(
  { weight: 1, arbitrary: fc.jsonValue() },
  { weight: 1, arbitrary: fc.anything() },
  { weight: 8, arbitrary: fc.array(mutation(leafPaths(VALID_BASELINE)), { minLength: 1, maxLength: 3 }).map((ms) => apply(VALID_BASELINE, ms)) },
);

it(`baseline.json: ${FUZZ_RUNS} random and mutated documents, nothing invalid accepted, every problem explained`, () => {
  let accepted = 0;
  fc.assert(
    fc.property(baselineDoc, (doc) => {
      try {
        parseBaseline(doc, 'baseline.json');
      } catch (e) {
        expectExplained(e, 'baseline_invalid');
        return;
      }
      accepted++;
      expect(baselineProblem(doc)).toBeNull();
    }),
    seeded('baseline documents', { numRuns: FUZZ_RUNS }),
  );
  expect(accepted).toBeGreaterThan(FUZZ_RUNS / 20);
});

it('config and baseline files: 1,000 random and damaged texts read from disk fail with one clear error each', () => {
  const path = join(tmp.path, 'file.json');
  const valid = JSON.stringify({ config: VALID_CONFIG, baseline: VALID_BASELINE });
  const text = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.nat({ max: valid.length }).map((n) => valid.slice(0, n)),
    fc.tuple(fc.nat({ max: valid.length - 1 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 })).map(([at, s]) => valid.slice(0, at) + s + valid.slice(at + 1)),
  );
  fc.assert(
    fc.property(text, fc.boolean(), (t, asConfig) => {
      writeFileSync(path, t);
      try {
        if (asConfig) loadConfig(path);
        else loadBaseline(path);
      } catch (e) {
        expect(e).toBeInstanceOf(AgentError);
        const err = e as AgentError;
        expect(['config_json', 'config_invalid', 'baseline_invalid']).toContain(err.code);
        expect(err.message.startsWith(`${asConfig ? 'config' : 'baseline'} ${path}: `) || err.message.startsWith(`${path}: `)).toBe(true);
        expect(isOneBoundedLine(err.message, 600)).toBe(true);
        return;
      }
      throw new Error('a random or damaged file was accepted');
    }),
    seeded('damaged config and baseline files', { numRuns: 1000 }),
  );
  // A path pointing at a key file by mistake: the error says where the syntax breaks, never what the file holds.
  const secret = `msp-2026:${Buffer.alloc(64, 7).toString('base64')}`;
  writeFileSync(path, secret);
  for (const load of [loadConfig, loadBaseline]) {
    let message = '';
    try {
      load(path);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/: not valid JSON/);
    expect(message).not.toContain('msp-2026');
    expect(message).not.toContain(secret.slice(9, 13));
  }
});
