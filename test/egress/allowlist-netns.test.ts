import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EGRESS_TABLE } from '../../src/egress/index.js';
import { tempDir } from '../helpers/tmp.js';
import { render, run } from '../nix/nix.js';
import { NetnsPair } from './netns.js';

const REPO = resolve(import.meta.dirname, '../..');
const TSX = join(REPO, 'node_modules/.bin/tsx');
const MCP = 'mcp.ca-test.internal';
const NTP = 'ntp.ca-test.internal';
const BLOCKED_MS = '1500';
const T = EGRESS_TABLE.name;

/**
 * The ruleset modules/lib/ruleset.nix renders, loaded with real nft into the client namespace
 * of a veth pair, and `compliance-agent egress-refresh` run there for real: DNS through the
 * ruleset to the peer's resolver, set elements replaced with nft, connections tried both ways.
 */
describe('egress allowlist in network namespaces', () => {
  const pair = new NetnsPair();
  const tmp = tempDir('ca-egress-');
  const zoneFile = join(tmp.path, 'zone.json');
  const configFile = join(tmp.path, 'config.json');
  const cacheFile = join(tmp.path, 'last-good.json');
  const statusFile = join(tmp.path, 'status.json');
  let appliance: string;
  let agentScope: string;

  const setZone = (zone: unknown) => writeFileSync(zoneFile, JSON.stringify(zone));
  const loadRuleset = (text: string) => pair.nft(['-f', '-'], text);
  const refresh = (cache = cacheFile) =>
    spawnSync('ip', ['netns', 'exec', pair.client, TSX, 'src/cli.ts', 'egress-refresh', '--config', configFile, '--cache', cache, '--status', statusFile], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 60_000,
    });
  const tcp = (host: string, port: number, asUid?: number) => pair.probe(['tcp', host, String(port), BLOCKED_MS], asUid).ok;

  beforeAll(async () => {
    for (const tool of ['ip', 'nft', 'setpriv']) run('which', [tool]);
    pair.setUp();
    setZone({ [MCP]: { A: [pair.serverIp4], AAAA: [pair.serverIp6] }, [NTP]: { A: [pair.serverIp4], AAAA: [pair.serverIp6] } });
    await pair.startPeer({ tcp: [443, 8080], udpEcho: [123, 5000], dnsPort: 53, zoneFile });
    appliance = render({ resolvers: [pair.serverIp4, pair.serverIp6] }).ruleset.requested;
    agentScope = render({ scope: 'agent', agentUser: 'nobody', resolvers: [pair.serverIp4] }).ruleset.requested;
    writeFileSync(
      configFile,
      JSON.stringify({
        mcpUrl: `https://${MCP}`,
        allowedHosts: [MCP],
        siteId: 'clinic-001',
        hostId: 'appliance-1',
        resellerId: 'msp-alpha',
        baselinePath: '/etc/compliance-agent/baseline.json',
        clientCertFile: '/run/credentials/compliance-agent.service/client-cert.pem',
        clientKeyFile: '/run/credentials/compliance-agent.service/client-key.pem',
        signingKeyFile: '/run/credentials/compliance-agent.service/evidence-signing.key',
        caFile: '/run/credentials/compliance-agent.service/mcp-ca.pem',
        trustedOrderKeys: ['msp:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
        timeServers: [NTP],
      }),
    );
    loadRuleset(appliance);
  });

  afterAll(() => {
    pair.cleanup();
    tmp.cleanup();
  });

  it('without the allowlist filled, HTTPS to the MCP is dropped and counted', () => {
    const before = pair.dropCount(T);
    expect(tcp(pair.serverIp4, 443)).toBe(false);
    expect(pair.dropCount(T)).toBeGreaterThan(before);
  });

  it('egress-refresh resolves through the ruleset and fills both sets', () => {
    const r = refresh();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`${MCP}: 2 address(es) (${pair.serverIp4}, ${pair.serverIp6})`);
    expect(pair.setElements(T, EGRESS_TABLE.setV4)).toEqual([pair.serverIp4]);
    expect(pair.setElements(T, EGRESS_TABLE.setV6)).toEqual([pair.serverIp6]);
    expect(pair.setElements(T, EGRESS_TABLE.ntpV4)).toEqual([pair.serverIp4]);
    expect(pair.setElements(T, EGRESS_TABLE.ntpV6)).toEqual([pair.serverIp6]);
    const status = JSON.parse(readFileSync(statusFile, 'utf8')) as { ok: boolean; applied: unknown };
    expect(status).toMatchObject({ ok: true, applied: { v4: [pair.serverIp4], v6: [pair.serverIp6] }, ntp: { v4: [pair.serverIp4], v6: [pair.serverIp6] } });
  });

  it('lets HTTPS to allowed addresses through and drops other ports', () => {
    expect(tcp(pair.serverIp4, 443)).toBe(true);
    expect(tcp(pair.serverIp6, 443)).toBe(true);
    const before = pair.dropCount(T);
    expect(tcp(pair.serverIp4, 8080)).toBe(false);
    expect(tcp(pair.serverIp6, 8080)).toBe(false);
    expect(pair.probe(['udp', pair.serverIp4, '5000', BLOCKED_MS]).ok).toBe(false);
    expect(pair.dropCount(T)).toBeGreaterThanOrEqual(before + 3);
  });

  it("opens the reseller sinks' ports (tcpPorts) to the same allowlisted addresses only", () => {
    loadRuleset(render({ resolvers: [pair.serverIp4, pair.serverIp6], tcpPorts: [443, 8080] }).ruleset.requested);
    expect(refresh().status).toBe(0);
    expect(tcp(pair.serverIp4, 8080)).toBe(true);
    expect(tcp(pair.serverIp6, 8080)).toBe(true);
    expect(tcp(pair.otherIp4, 8080)).toBe(false);
    loadRuleset(appliance);
    expect(refresh().status).toBe(0);
    expect(tcp(pair.serverIp4, 8080)).toBe(false);
  });

  it('drops HTTPS to an address outside the sets', () => {
    expect(tcp(pair.otherIp4, 443)).toBe(false);
  });

  it('allows DNS to the configured resolver only, NTP to the configured time servers only, and loopback', () => {
    expect(pair.probe(['dns', pair.serverIp4, MCP, BLOCKED_MS])).toEqual({ ok: true, addresses: [pair.serverIp4] });
    expect(pair.probe(['dns', pair.otherIp4, MCP, BLOCKED_MS]).ok).toBe(false);
    expect(pair.probe(['udp', pair.serverIp4, '123', BLOCKED_MS]).ok).toBe(true);
    expect(pair.probe(['udp', pair.serverIp6, '123', BLOCKED_MS]).ok).toBe(true);
    const before = pair.dropCount(T);
    expect(pair.probe(['udp', pair.otherIp4, '123', BLOCKED_MS]).ok).toBe(false);
    expect(pair.dropCount(T)).toBeGreaterThan(before);
    expect(pair.probe(['loopback']).ok).toBe(true);
  });

  it('with no time server configured, NTP goes nowhere', () => {
    const cfg = JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(configFile, JSON.stringify({ ...cfg, timeServers: [] }));
    try {
      expect(refresh().status).toBe(0);
      expect(pair.setElements(T, EGRESS_TABLE.ntpV4)).toEqual([]);
      expect(pair.probe(['udp', pair.serverIp4, '123', BLOCKED_MS]).ok).toBe(false);
    } finally {
      writeFileSync(configFile, JSON.stringify(cfg));
      expect(refresh().status).toBe(0);
    }
  });

  it('logs what it drops, with the prefix, rate-limited', () => {
    const chain = pair.nft(['list', 'chain', 'inet', T, 'egress']);
    expect(chain).toMatch(/limit rate 10\/second burst 20 packets log prefix "compliance-agent egress drop: "/);
    expect(chain).toMatch(/counter packets \d+ bytes \d+ drop\n\s*\}/);
  });

  it('a reload empties the sets (as nftables.service does) and egress-refresh fills them again', () => {
    loadRuleset(appliance);
    expect(pair.setElements(T, EGRESS_TABLE.setV4)).toEqual([]);
    expect(tcp(pair.serverIp4, 443)).toBe(false);
    const r = refresh();
    expect(r.status).toBe(0);
    expect(tcp(pair.serverIp4, 443)).toBe(true);
  });

  it('when DNS fails after a reload, the last good addresses are restored, the failure reported, exit 1', () => {
    setZone({ [NTP]: { A: [pair.serverIp4], AAAA: [pair.serverIp6] } });
    loadRuleset(appliance);
    const r = refresh();
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`egress-refresh: ${MCP.replace(/\./g, '\\.')}: DNS lookup failed \\(ENOTFOUND\\); keeping its 2 last good address\\(es\\) from `));
    expect(pair.setElements(T, EGRESS_TABLE.setV4)).toEqual([pair.serverIp4]);
    expect(pair.setElements(T, EGRESS_TABLE.setV6)).toEqual([pair.serverIp6]);
    expect(tcp(pair.serverIp4, 443)).toBe(true);
    const status = JSON.parse(readFileSync(statusFile, 'utf8')) as { ok: boolean; hosts: Array<{ status: string; reason: string }> };
    expect(status.ok).toBe(false);
    expect(status.hosts).toEqual([expect.objectContaining({ host: MCP, status: 'failed', reason: 'ENOTFOUND' }), expect.objectContaining({ host: NTP, status: 'resolved' })]);
  });

  it('never empties the sets when DNS fails with no last good answer', () => {
    setZone({ [MCP]: { servfail: true } });
    const r = refresh(join(tmp.path, 'fresh-cache.json'));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${MCP}: DNS lookup failed (EAI_AGAIN) and there is no last good address`);
    expect(r.stderr).toContain(`the sets in inet ${T} were left as they are`);
    expect(r.stdout).toContain('allowlist NOT replaced');
    expect(pair.setElements(T, EGRESS_TABLE.setV4)).toEqual([pair.serverIp4]);
    expect(tcp(pair.serverIp4, 443)).toBe(true);
  });

  it('agent scope filters only the agent user', () => {
    setZone({ [MCP]: { A: [pair.serverIp4], AAAA: [pair.serverIp6] }, [NTP]: { A: [pair.serverIp4], AAAA: [pair.serverIp6] } });
    loadRuleset(agentScope);
    expect(refresh().status).toBe(0);
    const nobody = 65534;
    expect(tcp(pair.serverIp4, 8080)).toBe(true);
    expect(tcp(pair.serverIp4, 8080, nobody)).toBe(false);
    expect(tcp(pair.serverIp4, 443, nobody)).toBe(true);
    expect(tcp(pair.otherIp4, 443, nobody)).toBe(false);
  });
});
