import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { normaliseRuleset, rulesetHash } from '../../src/checks/index.js';
import { sampleRuleset } from '../../testing/index.js';
import { AgentError } from '../../src/common/index.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('ruleset-');
afterAll(() => tmp.cleanup());

const BASE = `table inet filter {
\tset blocked {
\t\ttype ipv4_addr
\t\telements = { 198.51.100.7, 198.51.100.8 }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\ttcp dport 22 accept
\t\tip saddr @blocked drop
\t}
}
`;

describe('normaliseRuleset / rulesetHash', () => {
  it('ignores handles, comments, counters, quota use, element expiry and whitespace', () => {
    const noisy = `table inet filter { # handle 7
  set blocked { # handle 2
        type ipv4_addr
        elements = { 198.51.100.7, 198.51.100.8 }
        comment "ops list"
  }

  chain input { # handle 1
    type filter hook input priority filter; policy drop;
    ct state established,related counter packets 99123 bytes 88912311 accept comment "keep sessions" # handle 3
    tcp dport 22 accept # handle 4

    ip saddr @blocked drop # handle 5
  }
}`;
    expect(rulesetHash(noisy)).toBe(rulesetHash(BASE.replace('ct state established,related accept', 'ct state established,related counter packets 0 bytes 0 accept')));
    const quota = (used: number) => `table inet q {\n\tquota q1 {\n\t\tover 100 mbytes used ${used} mbytes\n\t}\n}\n`;
    expect(rulesetHash(quota(3))).toBe(rulesetHash(quota(77)));
  });

  it('keeps what is policy: an opened port, a static set element, the order of rules in a chain', () => {
    const base = rulesetHash(BASE);
    expect(rulesetHash(BASE.replace('tcp dport 22 accept', 'tcp dport { 22, 5432 } accept'))).not.toBe(base);
    expect(rulesetHash(BASE.replace('198.51.100.8 }', '198.51.100.9 }'))).not.toBe(base);
    expect(rulesetHash(BASE.replace('policy drop;', 'policy accept;'))).not.toBe(base);
    const swapped = BASE.replace('\t\ttcp dport 22 accept\n\t\tip saddr @blocked drop\n', '\t\tip saddr @blocked drop\n\t\ttcp dport 22 accept\n');
    expect(swapped).not.toBe(BASE);
    expect(rulesetHash(swapped)).not.toBe(base);
  });

  it('keeps a # or the word comment inside a string', () => {
    const a = 'table inet t {\n\tchain c {\n\t\tlog prefix "drop # comment " drop\n\t}\n}\n';
    expect(normaliseRuleset(a)).toMatchObject({ ok: true, text: 'table inet t {\nchain c {\nlog prefix "drop # comment " drop\n}\n}' });
  });

  it('drops runtime elements of timeout and dynamic sets (the egress allowlist), not of static sets', () => {
    const allow = (elements: string) => `table inet egress {\n\tset allowed_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval,timeout\n${elements}\t}\n}\n`;
    const empty = rulesetHash(allow(''));
    expect(rulesetHash(allow('\t\telements = { 203.0.113.10 timeout 5m expires 4m1s,\n\t\t\t     203.0.113.11 timeout 5m expires 2m }\n'))).toBe(empty);
    const meter = (e: string) => `table ip m {\n\tset seen {\n\t\ttype ipv4_addr\n\t\tsize 65535\n\t\tflags dynamic\n${e}\t}\n}\n`;
    expect(rulesetHash(meter('\t\telements = { 10.0.0.1 }\n'))).toBe(rulesetHash(meter('')));
  });

  it('does not depend on the order of tables', () => {
    const a = 'table ip a {\n}\ntable ip6 b {\n}\n';
    const b = 'table ip6 b {\n}\ntable ip a {\n}\n';
    expect(rulesetHash(a)).toBe(rulesetHash(b));
    expect(normaliseRuleset(a)).toMatchObject({ ok: true, tables: ['ip a', 'ip6 b'] });
  });

  it('hashes an empty ruleset as the sha256 of nothing', () => {
    expect(rulesetHash('')).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(normaliseRuleset('\n\n')).toEqual({ ok: true, text: '', tables: [] });
  });

  it('rejects what is not a ruleset, with the reason', () => {
    expect(normaliseRuleset('Segmentation fault\n')).toEqual({ ok: false, reason: 'expected "table <family> <name> {", found "Segmentation fault"' });
    expect(normaliseRuleset('table inet t {\n\tchain c {\n}\n')).toEqual({ ok: false, reason: 'unterminated block (missing "}")' });
    expect(normaliseRuleset('table inet t {\n}\n}\n')).toMatchObject({ ok: false });
    expect(normaliseRuleset('table inet t {\n\tchain c {\n\t\tlog prefix "open\n\t}\n}\n')).toEqual({ ok: false, reason: 'line 3: unterminated string' });
    expect(normaliseRuleset('table foo t {\n}\n')).toMatchObject({ ok: false });
    expect(() => rulesetHash('{{{')).toThrow(AgentError);
  });
});

/** Run a shell script in a fresh network namespace (its own nftables), as root. */
function inNetns(script: string): string {
  return execFileSync('unshare', ['--net', 'sh', '-ec', script], { encoding: 'utf8' });
}

describe('against real nft in a network namespace', () => {
  it('the simulated ruleset is exactly what nft prints, and its hash is stable while traffic moves counters', () => {
    const file = join(tmp.path, 'sample.nft');
    writeFileSync(file, sampleRuleset());
    const out = inNetns(`
      nft -f ${file}
      nft list ruleset
      echo ===
      ip link add v0 type veth peer name v1 && ip addr add 10.9.9.1/24 dev v0 && ip link set v0 up && ip link set v1 up
      for i in 1 2 3 4 5; do bash -c 'echo x > /dev/udp/10.9.9.2/9' 2>/dev/null || true; done
      nft list ruleset
      echo ===
      nft -a list ruleset
    `);
    const [first, second, withHandles] = out.split('===\n') as [string, string, string];
    // Listed before any interface exists, so no packet (IPv6 autoconfiguration included) moved a
    // counter yet; then drops happened (the policy is drop) and the dump changed, the hash did not.
    expect(second).not.toBe(first);
    expect(first).toContain('counter packets 17 bytes 1020 log prefix');
    expect(Number(/counter packets (\d+) bytes \d+ log prefix/.exec(second)?.[1])).toBeGreaterThanOrEqual(22);
    expect(withHandles).toContain('# handle');
    const expected = rulesetHash(sampleRuleset());
    expect(rulesetHash(first)).toBe(expected);
    expect(rulesetHash(second)).toBe(expected);
    expect(rulesetHash(withHandles)).toBe(expected);
  });

  it('a real policy change shows in the hash; a re-listed empty namespace hashes as empty', () => {
    const file = join(tmp.path, 'opened.nft');
    writeFileSync(file, sampleRuleset({ tcpPorts: [22, 443, 5432] }));
    const opened = inNetns(`nft -f ${file}\nnft list ruleset`);
    expect(rulesetHash(opened)).not.toBe(rulesetHash(sampleRuleset()));
    expect(rulesetHash(opened)).toBe(rulesetHash(sampleRuleset({ tcpPorts: [22, 443, 5432] })));
    expect(rulesetHash(inNetns('nft list ruleset'))).toBe(rulesetHash(''));
  });
});
