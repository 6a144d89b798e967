import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EGRESS_TABLE, readLastGood, refreshEgress, replaceSetsScript, splitAddresses, systemResolver, type Resolver, type ResolveOutcome } from '../../src/egress/index.js';
import { RealHost } from '../../src/host/index.js';
import { tempDir } from '../helpers/tmp.js';
import { render, run } from '../nix/nix.js';
import { NetnsHost } from './netns.js';

const T = EGRESS_TABLE.name;

/** DNS answers scripted per host; a host not in the map fails with ENOTFOUND. */
function scripted(answers: Record<string, ResolveOutcome>): Resolver {
  return async (host) => answers[host] ?? { ok: false, reason: 'ENOTFOUND' };
}
const ok = (...addresses: string[]): ResolveOutcome => ({ ok: true, addresses: splitAddresses(addresses) });

describe('replaceSetsScript and splitAddresses', () => {
  it('flushes and adds the allowlist and NTP sets in one batch, skipping the add for an empty family', () => {
    expect(replaceSetsScript(EGRESS_TABLE, { v4: ['192.0.2.1', '192.0.2.2'], v6: [] })).toBe(
      'flush set inet compliance_agent allowed_v4\n' +
        'add element inet compliance_agent allowed_v4 { 192.0.2.1, 192.0.2.2 }\n' +
        'flush set inet compliance_agent allowed_v6\n' +
        'flush set inet compliance_agent ntp_v4\n' +
        'flush set inet compliance_agent ntp_v6\n',
    );
    expect(replaceSetsScript(EGRESS_TABLE, { v4: [], v6: [] }, { v4: ['192.0.2.123'], v6: ['2001:db8::123'] })).toContain(
      'add element inet compliance_agent ntp_v4 { 192.0.2.123 }\nflush set inet compliance_agent ntp_v6\nadd element inet compliance_agent ntp_v6 { 2001:db8::123 }\n',
    );
  });

  it('splits by family, deduplicates, sorts, drops what is not an address', () => {
    expect(splitAddresses(['2001:DB8::1', '192.0.2.9', '192.0.2.1', '192.0.2.9', 'not-an-ip', '2001:db8::1'])).toEqual({
      v4: ['192.0.2.1', '192.0.2.9'],
      v6: ['2001:db8::1'],
    });
  });

  it('the system resolver answers from /etc/hosts and reports a failure as a reason', async () => {
    const r = await systemResolver(5000)('localhost');
    expect(r.ok && r.addresses.v4).toContain('127.0.0.1');
    const bad = await systemResolver(5000)('does-not-exist.invalid');
    expect(bad).toEqual({ ok: false, reason: expect.stringMatching(/^(ENOTFOUND|EAI_AGAIN)$/) });
  });
});

describe('refreshEgress against real nft in a network namespace', () => {
  const ns = `ca-test-${randomBytes(3).toString('hex')}`;
  const host = new NetnsHost(ns);
  const tmp = tempDir('ca-refresh-');
  const cachePath = join(tmp.path, 'last-good.json');
  const ruleset = render({ resolvers: ['192.0.2.53'] }).ruleset.requested;
  const elements = (set: string): string[] => {
    const json = JSON.parse(run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'set', 'inet', T, set])) as { nftables: Array<{ set?: { elem?: string[] } }> };
    return [...(json.nftables.find((o) => o.set)?.set?.elem ?? [])].sort();
  };
  const refresh = (resolve: Resolver, hosts: string[], extra: { statusPath?: string } = {}) => refreshEgress({ host, resolve, hosts, cachePath, ...extra });

  beforeAll(() => {
    run('ip', ['netns', 'add', ns]);
  });
  beforeEach(() => {
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: ruleset });
    rmSync(cachePath, { force: true });
  });
  afterAll(() => {
    run('ip', ['netns', 'del', ns]);
    tmp.cleanup();
  });

  it('replaces the elements with the union of every host and records the answers', async () => {
    const r = await refresh(scripted({ 'a.example': ok('192.0.2.1', '2001:db8::1'), 'b.example': ok('192.0.2.2', '192.0.2.1') }), ['a.example', 'b.example']);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(elements(EGRESS_TABLE.setV4)).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(elements(EGRESS_TABLE.setV6)).toEqual(['2001:db8::1']);
    const cache = readLastGood(cachePath);
    expect(cache.ok && [...cache.hosts.keys()]).toEqual(['a.example', 'b.example']);

    const again = await refresh(scripted({ 'a.example': ok('192.0.2.7'), 'b.example': ok('192.0.2.8') }), ['a.example', 'b.example']);
    expect(again.ok).toBe(true);
    expect(elements(EGRESS_TABLE.setV4)).toEqual(['192.0.2.7', '192.0.2.8']);
    expect(elements(EGRESS_TABLE.setV6)).toEqual([]);
  });

  it('a host whose DNS fails keeps its last good addresses while the others are updated', async () => {
    await refresh(scripted({ 'a.example': ok('192.0.2.1'), 'b.example': ok('192.0.2.2') }), ['a.example', 'b.example']);
    const r = await refresh(scripted({ 'a.example': ok('192.0.2.10') }), ['a.example', 'b.example']);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.stringMatching(/^b\.example: DNS lookup failed \(ENOTFOUND\); keeping its 1 last good address\(es\) from \d{4}-/)]);
    expect(r.hosts[1]).toMatchObject({ host: 'b.example', status: 'failed', reason: 'ENOTFOUND', addresses: { v4: ['192.0.2.2'], v6: [] } });
    expect(elements(EGRESS_TABLE.setV4)).toEqual(['192.0.2.10', '192.0.2.2']);
    // The failed host's entry is carried over, not refreshed.
    const cache = readLastGood(cachePath);
    expect(cache.ok && cache.hosts.get('b.example')?.v4).toEqual(['192.0.2.2']);
  });

  it('never empties the sets: with no answer and no last good address they are left as they are', async () => {
    await refresh(scripted({ 'a.example': ok('192.0.2.1') }), ['a.example']);
    rmSync(cachePath, { force: true });
    const r = await refresh(scripted({}), ['a.example']);
    expect(r.ok).toBe(false);
    expect(r.applied).toBeNull();
    expect(r.problems).toEqual([
      'a.example: DNS lookup failed (ENOTFOUND) and there is no last good address: it stays unreachable',
      `no address for any of 1 allowed host(s): the sets in inet ${T} were left as they are`,
    ]);
    expect(elements(EGRESS_TABLE.setV4)).toEqual(['192.0.2.1']);
  });

  it('applies both sets in one transaction: a failure in the second leaves the first untouched', async () => {
    // A table whose v6 set has the wrong type: adding an IPv6 element to it fails inside the batch.
    const t2 = { family: 'inet', name: 't2', setV4: 'allowed_v4', setV6: 'allowed_v6', ntpV4: 'ntp_v4', ntpV6: 'ntp_v6' };
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input:
        'table inet t2 {\n set allowed_v4 { type ipv4_addr; elements = { 192.0.2.1 } }\n set allowed_v6 { type ipv4_addr; }\n set ntp_v4 { type ipv4_addr; }\n set ntp_v6 { type ipv6_addr; }\n}\n',
    });
    const r = await refreshEgress({ host, resolve: scripted({ 'a.example': ok('192.0.2.99', '2001:db8::99') }), hosts: ['a.example'], cachePath, table: t2 });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([expect.stringMatching(/^nft failed \(exit 1\): .+; the allowlist was not updated$/)]);
    const json = JSON.parse(run('ip', ['netns', 'exec', ns, 'nft', '-j', 'list', 'set', 'inet', 't2', 'allowed_v4'])) as { nftables: Array<{ set?: { elem?: string[] } }> };
    expect(json.nftables.find((o) => o.set)?.set?.elem).toEqual(['192.0.2.1']);
  });

  it('reports a missing table, and still records the DNS answers for when it comes back', async () => {
    run('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', T]);
    const r = await refresh(scripted({ 'a.example': ok('192.0.2.5') }), ['a.example']);
    expect(r.ok).toBe(false);
    expect(r.problems[0]).toMatch(/^nft: table inet compliance_agent or its sets do not exist/);
    run('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: ruleset });
    const after = await refresh(scripted({}), ['a.example']);
    expect(after.applied).toEqual({ v4: ['192.0.2.5'], v6: [] });
    expect(elements(EGRESS_TABLE.setV4)).toEqual(['192.0.2.5']);
  });

  it('names an unreadable last-good file and carries on without it', async () => {
    writeFileSync(cachePath, '{"version":1,"hosts":{"a.example":{"v4":["not an ip"],"v6":[],"resolvedAt":"x"}}}');
    const r = await refresh(scripted({ 'a.example': ok('192.0.2.1') }), ['a.example']);
    expect(r.problems).toEqual([`${cachePath}: not a last-good file; starting without last good addresses`]);
    expect(elements(EGRESS_TABLE.setV4)).toEqual(['192.0.2.1']);
    writeFileSync(cachePath, '{broken');
    const r2 = await refresh(scripted({ 'a.example': ok('192.0.2.1') }), ['a.example']);
    expect(r2.problems).toEqual([`${cachePath}: not valid JSON; starting without last good addresses`]);
  });

  it('reports nft missing from PATH', async () => {
    const r = await refreshEgress({ host: new RealHost({ path: tmp.path }), resolve: scripted({ 'a.example': ok('192.0.2.1') }), hosts: ['a.example'], cachePath });
    expect(r.problems).toEqual(['nft: command not found (nftables is not installed or not on PATH); the allowlist was not updated']);
  });

  it('writes a status file others can read', async () => {
    const statusPath = join(tmp.path, 'status.json');
    await refresh(scripted({ 'a.example': ok('192.0.2.1') }), ['a.example'], { statusPath });
    const status = JSON.parse(readFileSync(statusPath, 'utf8')) as unknown;
    expect(status).toMatchObject({ ok: true, applied: { v4: ['192.0.2.1'], v6: [] }, hosts: [{ host: 'a.example', status: 'resolved' }] });
  });
});
