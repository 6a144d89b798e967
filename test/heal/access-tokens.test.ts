import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createLogger } from '../../src/common/index.js';
import { applyHealRequests } from '../../src/heal/index.js';
import { healLayout } from '../../src/state/index.js';
import { RealHost, REBUILD_ENV } from '../../src/host/index.js';
import { iso } from '../orders/fixtures.js';
import { nixEval, render, type Rendered } from '../nix/nix.js';
import { setup, type Setup } from './fixtures.js';

let s: Setup | undefined;
afterEach(() => {
  s?.cleanup();
  s = undefined;
});

const TOKEN = 'glpat-PLANTEDxTOKENx7f3k9q2w';
const REV = '4'.repeat(40);

/** Every file under a directory, as text (the SQLite database and WAL included, byte for byte). */
function everyFile(dir: string): string {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((p) => statSync(p).isFile())
    .map((p) => readFileSync(p).toString('latin1'))
    .join('\n');
}

describe('a Nix access token stays out of URLs, logs, evidence and rendered config', () => {
  it('the module hands the token file to the healer as a credential; config.json and the unit environment carry no token', () => {
    s = setup();
    const tokenFile = join(s.stateDir, 'nix-access-tokens');
    writeFileSync(tokenFile, `access-tokens = git.msp.example=${TOKEN}\n`, { mode: 0o600 });
    const sample = nixEval<Rendered>('checks/pure-helpers.nix');
    const r = render(
      {},
      {
        ...sample.defaults,
        siteId: 'clinic-001',
        resellerId: 'msp-alpha',
        baselinePath: '/etc/compliance-agent/baseline.json',
        caFile: '/c',
        clientCertFile: '/c',
        clientKeyFile: '/k',
        signingKeyFile: '/s',
        trustedOrderKeys: ['msp:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
        hostId: 'h',
        nixAccessTokensFile: tokenFile,
      },
    );
    expect(r.healNixAccess).toEqual({ environment: { NIX_USER_CONF_FILES: '%d/nix-access-tokens' }, loadCredentials: [`nix-access-tokens:${tokenFile}`] });
    expect(JSON.stringify(r)).not.toContain(TOKEN);
    expect(JSON.stringify(r.config)).not.toContain('nix-access-tokens');
    expect(sample.healNixAccess).toEqual({ environment: {}, loadCredentials: [] });
  });

  it('the healer passes Nix the file path (NIX_USER_CONF_FILES), never the token, in its environment', async () => {
    const saved = process.env.NIX_USER_CONF_FILES;
    process.env.NIX_USER_CONF_FILES = '/run/credentials/compliance-agent-heal.service/nix-access-tokens';
    try {
      const env = await new RealHost({ passEnv: REBUILD_ENV }).exec('env', [], { timeoutMs: 10_000 });
      expect(env.stdout).toContain('NIX_USER_CONF_FILES=/run/credentials/compliance-agent-heal.service/nix-access-tokens\n');
    } finally {
      if (saved === undefined) delete process.env.NIX_USER_CONF_FILES;
      else process.env.NIX_USER_CONF_FILES = saved;
    }
  });

  it('an order carrying the token in its flake URL is refused by agent and healer; logs, bundles and state hold no token', async () => {
    const lines: string[] = [];
    const logger = createLogger('DEBUG', { write: (line: string) => void lines.push(line) });
    s = setup({ logger });
    const t = s;
    const leaky = `git+https://oauth2:${TOKEN}@git.msp.example/sites/clinic-001?rev=${REV}#appliance`;
    const drafts: unknown[] = [];

    const refused = await t.handleOrder(t.order('apply_baseline', { revision: REV, flakeRef: leaky }), await t.cycle());
    expect(refused.accepted).toBe(false);
    drafts.push(...refused.drafts);

    // Dropped directly in the healer's drop box, as a compromised agent could.
    const env = t.order('apply_baseline', { revision: REV, flakeRef: leaky });
    const orderId = (JSON.parse(Buffer.from(env.payload, 'base64').toString()) as { order_id: string }).order_id;
    const id = randomUUID();
    writeFileSync(
      join(healLayout(t.healDir).requests, `${id}.json`),
      JSON.stringify({
        version: 1,
        request_id: id,
        created_at: iso(t.sim.now()),
        envelope: env,
        plan: { order_id: orderId, actions: [{ kind: 'rebuild_switch', flakeRef: leaky }] },
      }),
    );
    // And a heal that does build the (pinned, token-free) baseline flake.
    t.sim.setRunningRevision('0'.repeat(40));
    expect((await t.handleOrder(t.order('heal', { checks: ['patching'] }), await t.cycle())).accepted).toBe(true);
    const run = await applyHealRequests({ ...t.healer, logger });
    expect(run.results.map((r) => r.result.outcome).sort()).toEqual(['healed', 'rejected']);
    const collected = await t.collectResults(await t.cycle());
    t.db.transaction(() => collected.record())();
    drafts.push(...collected.drafts);
    // The agent's state, and root's: its own state and the results it wrote (the drop box holds what the test planted).
    const heal = healLayout(t.healDir);
    const onDisk = [everyFile(t.stateDir), everyFile(heal.state), everyFile(heal.results)].join('\n');
    collected.ack();

    expect(lines.length).toBeGreaterThan(3);
    expect(lines.join('')).not.toContain(TOKEN);
    expect(drafts.length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(drafts)).not.toContain(TOKEN);
    expect(onDisk).not.toContain(TOKEN);
    expect(t.sim.commandLines().join('\n')).not.toContain(TOKEN);
  });
});
