import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { baselineFor, simulatedAppliance } from '../../src/host/index.js';
import { ensureSpool, spoolPaths, writeHealRequest } from '../../src/heal/index.js';
import { iso, makeKey, signPayload } from '../orders/fixtures.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('ca-heal-cli-');
afterAll(() => tmp.cleanup());
const msp = makeKey('msp-2026');
const stateDir = join(tmp.path, 'state');
const configPath = join(tmp.path, 'config.json');

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function order(overrides: Record<string, unknown>, key = msp.secret) {
  const now = Date.now();
  const payload = {
    order_id: randomUUID(),
    site_id: 'clinic-001',
    host_id: 'appliance-1',
    sequence: 1,
    issued_at: iso(now),
    expires_at: iso(now + 600_000),
    policy_version: '1.0',
    type: 'rollback',
    params: {},
    ...overrides,
  };
  return { env: signPayload(payload, key), orderId: payload.order_id };
}

beforeAll(() => {
  const sim = simulatedAppliance();
  const baselinePath = join(tmp.path, 'baseline.json');
  writeFileSync(baselinePath, JSON.stringify(baselineFor(sim)));
  sim.dispose();
  writeFileSync(
    configPath,
    JSON.stringify({
      siteId: 'clinic-001',
      hostId: 'appliance-1',
      deploymentMode: 'direct',
      baselinePath,
      clientCertFile: '/run/credentials/client.crt',
      clientKeyFile: '/run/credentials/client.key',
      signingKeyFile: '/run/credentials/evidence.key',
      caFile: '/etc/compliance-agent/ca.pem',
      trustedOrderKeys: [msp.text],
      stateDir,
    }),
  );
  ensureSpool(stateDir);
});

describe('compliance-agent heal-apply (real host: every request here must be refused before any command runs)', () => {
  it('with an empty spool says so and exits 0', () => {
    const r = cli(['heal-apply', '--config', configPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('no heal requests\n');
  });

  it('refuses a forged and an expired request, writes their results, empties the spool', () => {
    const forged = order({}, makeKey('msp-2026').secret);
    const expired = order({ issued_at: iso(Date.now() - 1_200_000), expires_at: iso(Date.now() - 600_000) });
    for (const o of [forged, expired]) {
      writeHealRequest(stateDir, { version: 1, request_id: randomUUID(), created_at: iso(Date.now()), envelope: o.env, plan: { order_id: o.orderId, actions: [{ kind: 'rollback' }] } });
    }
    const r = cli(['heal-apply', '--config', configPath, '--json']);
    expect(r.code).toBe(0);
    const results = JSON.parse(r.stdout) as Array<{ outcome: string; reason: string; order_id: string; action_taken: unknown[] }>;
    expect(results.map((x) => [x.order_id, x.outcome, x.reason.split(':')[0], x.action_taken.length]).sort()).toEqual(
      [
        [forged.orderId, 'rejected', 'bad_signature', 0],
        [expired.orderId, 'rejected', 'expired', 0],
      ].sort(),
    );
    expect(readdirSync(spoolPaths(stateDir).requests)).toEqual([]);
    expect(readdirSync(spoolPaths(stateDir).results)).toHaveLength(2);
  });

  it('a bad config exits 2 with the problem, a relative --applied path is a usage error', () => {
    const bad = join(tmp.path, 'bad.json');
    writeFileSync(bad, JSON.stringify({ siteId: 'x' }));
    const r = cli(['heal-apply', '--config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('trustedOrderKeys');
    expect(cli(['heal-apply', '--config', configPath, '--applied', 'applied.json']).code).toBe(2);
  });
});
