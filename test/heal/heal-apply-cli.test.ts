import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { iso, makeKey, signPayload } from '../orders/fixtures.js';
import { Site } from '../privsep/site.js';

let site: Site;
beforeAll(() => {
  site = new Site();
  site.init();
});
afterAll(() => site?.cleanup());

describe('compliance-agent heal-apply (every request here must be refused before any command runs)', () => {
  it('with an empty drop box says so and exits 0', () => {
    const r = site.cli([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('no heal requests\n');
  });

  it('refuses a forged and an expired request, writes their results, leaves the drop box to the agent', () => {
    const forgedOrder = site.order('rollback', {});
    const forged = { env: signPayload(JSON.parse(Buffer.from(forgedOrder.env.payload, 'base64').toString()), makeKey('msp-2026').secret), orderId: forgedOrder.orderId };
    const expired = site.order('rollback', {}, { issued_at: iso(Date.now() - 1_200_000), expires_at: iso(Date.now() - 600_000) });
    for (const o of [forged, expired]) {
      const id = randomUUID();
      site.drop(
        `${id}.json`,
        JSON.stringify({ version: 1, request_id: id, created_at: iso(Date.now()), envelope: o.env, plan: { order_id: o.orderId, actions: [{ kind: 'rollback' }] } }),
      );
    }
    const results = site.heal();
    expect(results.map((x) => [x.order_id, x.outcome, x.reason!.split(':')[0], x.action_taken.length]).sort()).toEqual(
      [
        [forged.orderId, 'rejected', 'bad_signature', 0],
        [expired.orderId, 'rejected', 'expired', 0],
      ].sort(),
    );
    expect(readdirSync(site.requests)).toHaveLength(2);
    expect(readdirSync(site.results)).toHaveLength(2);
    expect(site.actions()).toEqual([]);
    // Answered once: a second run reads neither again.
    expect(site.cli([]).stdout).toBe('no heal requests\n');
  });

  it('a bad config exits 2 with the problem; an unknown agent user and a removed option are errors', () => {
    const bad = join(site.base, 'bad.json');
    writeFileSync(bad, JSON.stringify({ siteId: 'x' }));
    const r = site.cli(['--config', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('trustedOrderKeys');
    expect(site.cli(['--applied', '/root/applied.json']).code).toBe(2);
    const unknown = site.cli(['--agent-user', 'no-such-user-here']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('agent user no-such-user-here is not in /etc/passwd');
  });
});
