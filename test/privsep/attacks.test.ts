import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { linkSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Site } from './site.js';

// The compromised agent: everything below runs as the unprivileged test user against the drop
// box, then the real heal-apply runs as root. Each test: the sentinels (root-owned files the
// attack aims at, and /etc/shadow, /etc/passwd) are byte-identical afterwards, and a legitimate
// request dropped alongside the attack is still carried out.
let site: Site;
let before: Record<string, string>;

beforeAll(() => {
  site = new Site();
  site.init();
});
afterAll(() => site?.cleanup());
beforeEach(() => {
  before = site.fingerprint();
});

/** Drop a legitimate restart next to the attack, run the healer once, and check both halves. */
function healAlongside(legit = site.restartRequest()): { results: ReturnType<Site['heal']>; legit: ReturnType<Site['heal']>[number] } {
  site.stopUnit('clinic-app.service');
  site.drop(`${legit.requestId}.json`, legit.text);
  const actionsBefore = site.actions().length;
  const results = site.heal();
  const mine = results.find((r) => r.request_id === legit.requestId);
  expect(mine, 'the legitimate request was answered').toBeDefined();
  expect(site.fingerprint()).toEqual(before);
  expect(mine!.outcome).toBe('healed');
  expect(site.actions().slice(actionsBefore)).toEqual(['systemctl restart -- clinic-app.service']);
  return { results, legit: mine! };
}

describe('the drop box is the only place the agent can write; root follows nothing in it', () => {
  it('the layout: state root-only, drop box sticky for the agent group, results read-only to the agent', () => {
    expect(site.asAgent(`ls '${site.healDir}/state'`).code).not.toBe(0);
    expect(site.asAgent(`touch '${site.results}/x.json'`).code).not.toBe(0);
    expect(site.asAgent(`mv '${site.requests}' '${site.healDir}/r2'`).code).not.toBe(0);
    expect(site.asAgent(`rm -rf '${site.requests}'`).code).not.toBe(0);
    expect(site.asAgent(`touch '${site.requests}/mine' && rm '${site.requests}/mine'`).code).toBe(0);
    healAlongside();
  });

  it('symlinked request files and directories: to root files, to root directories, to the state', () => {
    const a = randomUUID();
    const b = randomUUID();
    const c = randomUUID();
    expect(
      site.asAgent(
        `ln -s '${site.sentinels}/shadow' '${site.requests}/${a}.json' && ln -s '${site.sentinels}/root-dir' '${site.requests}/${b}.json' && ln -s '${site.healDir}/state/healer.db' '${site.requests}/${c}.json'`,
      ).code,
    ).toBe(0);
    // A directory of its own full of links, and links named like the old layout's temp files.
    expect(
      site.asAgent(
        `mkdir '${site.requests}/sub' && ln -s '${site.sentinels}/profile' '${site.requests}/sub/${randomUUID()}.json' && for p in $(seq 100 140); do ln -s /etc/profile.local "${site.requests}/.${a}.json.$p.tmp"; done`,
      ).code,
    ).toBe(0);
    const { results } = healAlongside();
    for (const id of [a, b, c]) expect(results.find((r) => r.request_id === id)).toMatchObject({ outcome: 'rejected', reason: 'bad_request: not a regular file' });
    expect(JSON.stringify(results)).not.toContain('sentinel');
  });

  it("hard links: a root file linked in (planted) and the agent's own file with two links are refused unread", () => {
    const planted = randomUUID();
    // protected_hardlinks stops the agent linking root's files; root plants one to show it is refused anyway.
    expect(site.asAgent(`ln '${site.sentinels}/profile' '${site.requests}/${randomUUID()}.json'`).code).not.toBe(0);
    linkSync(join(site.sentinels, 'profile'), join(site.requests, `${planted}.json`));
    const own = site.restartRequest();
    const twice = randomUUID();
    site.drop(`${own.requestId}.json`, own.text);
    expect(site.asAgent(`ln '${site.requests}/${own.requestId}.json' '${site.requests}/${twice}.json'`).code).toBe(0);
    before = site.fingerprint();
    const { results } = healAlongside();
    expect(results.find((r) => r.request_id === planted)?.reason).toMatch(/^bad_request: (owned by uid 0, not the agent|2 hard links)$/);
    expect(results.find((r) => r.request_id === own.requestId)?.reason).toBe('bad_request: 2 hard links');
    expect(results.find((r) => r.request_id === twice)?.reason).toBe('bad_request: 2 hard links');
  });

  it('FIFOs and device nodes are never opened (the healer does not block on them)', () => {
    const fifo = randomUUID();
    const dev = randomUUID();
    expect(site.asAgent(`mkfifo '${site.requests}/${fifo}.json'`).code).toBe(0);
    // The agent cannot mknod; a node planted by someone who can is refused the same way.
    expect(spawnSync('mknod', [join(site.requests, `${dev}.json`), 'c', '1', '3']).status).toBe(0);
    const { results } = healAlongside();
    expect(results.find((r) => r.request_id === fifo)?.reason).toBe('bad_request: not a regular file');
    expect(results.find((r) => r.request_id === dev)?.reason).toBe('bad_request: not a regular file');
  });

  it('a directory swapped while the healer runs: links and renames racing the healer change nothing', async () => {
    const target = randomUUID();
    const racer = site.asAgentInBackground(
      `cd '${site.requests}' || exit 1; i=0; while [ $i -lt 4000 ]; do ` +
        `mkdir -p d; ln -sfn '${site.sentinels}/root-dir' d2; mv -T d2 '${target}.json' 2>/dev/null; ` +
        `echo '{}' > x.tmp; mv x.tmp '${target}.json' 2>/dev/null; rm -rf '${target}.json' d 2>/dev/null; ` +
        `ln -s '${site.sentinels}/shadow' '${target}.json' 2>/dev/null; rm -f '${target}.json'; i=$((i+1)); done`,
    );
    try {
      await new Promise((r) => setTimeout(r, 200));
      healAlongside();
    } finally {
      // The whole group (the loop and the mv or ln it may be running), then what a killed
      // iteration left behind: a later test must not find this test's files in the drop box.
      if (racer.exitCode === null && racer.signalCode === null) {
        const exited = new Promise((r) => racer.once('exit', r));
        process.kill(-racer.pid!, 'SIGKILL');
        await exited;
      }
      site.asAgent(`cd '${site.requests}' && rm -rf '${target}.json' d d2 x.tmp`);
    }
  });

  it('huge and numerous files: one over the size limit, thousands of names; the legitimate request still runs', () => {
    const huge = randomUUID();
    expect(site.asAgent(`head -c 400000 /dev/zero | tr '\\0' ' ' > '${site.requests}/${huge}.json'`).code).toBe(0);
    expect(
      site.asAgent(
        `cd '${site.requests}' && for i in $(seq 1 2000); do : > "junk-$i"; done && for i in $(seq 1 150); do echo '{}' > "$(cat /proc/sys/kernel/random/uuid).json"; done`,
      ).code,
    ).toBe(0);
    const { results } = healAlongside();
    expect(results.find((r) => r.request_id === huge)?.reason).toBe('bad_request: 400000 bytes, over the 262144-byte limit');
    expect(results.filter((r) => r.reason === 'bad_request: not JSON' || r.reason?.startsWith('bad_request: '))).toHaveLength(151);
    site.asAgent(`cd '${site.requests}' && rm -f junk-*`);
  });

  it('dotfiles, names with newlines and `..`, upper-case and near-miss names are ignored, never opened or printed', () => {
    const legitLike = randomUUID();
    const names = [
      `.${legitLike}.json`,
      '..json',
      `..\n${randomUUID()}.json`,
      `${randomUUID()}.json\nforged line`,
      `${randomUUID().toUpperCase()}.json`,
      `${randomUUID()}.json.tmp`,
    ];
    for (const n of names) expect(site.asAgent('printf "{}" > "$1"', undefined, [join(site.requests, n)]).code).toBe(0);
    expect(site.asAgent(`ln -s .. '${site.requests}/up' && ln -s '../state' '${site.requests}/${randomUUID()}'`).code).toBe(0);
    const r = site.cli([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('no heal requests\n');
    expect(r.stderr).not.toContain('forged');
    for (const line of r.stderr.trim().split('\n').filter(Boolean)) expect((): unknown => JSON.parse(line)).not.toThrow();
    expect(site.fingerprint()).toEqual(before);
    healAlongside();
  });
});

describe('findings of the attack on the old layout, each one closed', () => {
  it('root writes no file the agent names: results go to a root-only directory under a random name', () => {
    // The old attack: links at the temp names root would use (request id, then a pid) in a results
    // directory the agent owned, for the next few thousand pids, aimed at root's files.
    const legit = site.restartRequest();
    const dir = join(site.stateDir, 'heal', 'results');
    // One process plants them all (python3, which .ci/run installs), so the pids stay ahead of it.
    const plant =
      `mkdir -p '${dir}' && python3 -c 'import os, sys; last = int(open("/proc/sys/kernel/ns_last_pid").read()); ` +
      `[os.symlink(sys.argv[1], "%s/.%s.json.%d.tmp" % (sys.argv[2], sys.argv[3], p)) for p in range(last, last + 2000)]' ` +
      `'${site.sentinels}/profile' '${dir}' '${legit.requestId}'`;
    expect(site.asAgent(plant).code).toBe(0);
    const { results } = healAlongside(legit);
    expect(site.asAgent(`ln -s '${site.sentinels}/profile' '${site.results}/.${legit.requestId}.json.1.tmp'`).code).not.toBe(0);
    const files = readdirSync(site.results);
    expect(files.every((f) => /^[0-9a-f-]{36}\.json$/.test(f))).toBe(true);
    expect(files.some((f) => readFileSync(join(site.results, f), 'utf8').includes(results[0]!.request_id!))).toBe(true);
  });

  it('root deletes nothing: a spool replaced by a link to a root directory, stray names and links in the drop box survive', () => {
    expect(
      site.asAgent(`mkdir -p '${site.stateDir}/heal' && rm -rf '${site.stateDir}/heal/requests' && ln -s '${site.sentinels}/root-dir' '${site.stateDir}/heal/requests'`).code,
    ).toBe(0);
    site.asAgent(`ln -s '${site.sentinels}/root-dir/notes' '${site.requests}/notes'; ln -s '${site.sentinels}/root-dir' '${site.requests}/dir-link'`);
    expect(site.cli([]).code).toBe(0);
    expect(site.fingerprint()).toEqual(before);
    healAlongside();
    expect(readdirSync(join(site.sentinels, 'root-dir')).sort()).toEqual(['authorized_keys', 'boot-entry.conf', 'notes']);
  });

  it('unknown keys with newlines and $(...) in a request: one rejected result naming no key, one line each, and it blocks nothing', () => {
    const evil = randomUUID();
    const keys = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`$(touch /etc/profile.local)\n{"level":30,"msg":"forged ${i}"}\n${'k'.repeat(1200)}`, 1]));
    site.drop(
      `${evil}.json`,
      JSON.stringify({
        version: 1,
        request_id: evil,
        created_at: '2026-11-30T00:00:00Z',
        envelope: { payloadType: 'x', payload: '', signatures: [] },
        plan: { order_id: evil, actions: [] },
        ...keys,
      }),
    );
    const legit = site.restartRequest();
    site.stopUnit('clinic-app.service');
    site.drop(`${legit.requestId}.json`, legit.text);
    const r = site.cli([]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.find((l) => l.startsWith(evil))).toMatch(/: rejected \(bad_request: .*6 unknown field\(s\)/);
    expect(lines.find((l) => l.startsWith(legit.requestId))).toMatch(/: healed \(/);
    expect(r.stdout + r.stderr).not.toContain('forged');
    expect(r.stdout + r.stderr).not.toContain('$(touch');
    for (const line of r.stderr.trim().split('\n').filter(Boolean)) expect((): unknown => JSON.parse(line)).not.toThrow();
    expect(site.fingerprint()).toEqual(before);
  });

  it('by hand: --applied is gone, a baseline unit starting with a dash is refused, a healDir inside stateDir is refused', () => {
    expect(site.cli(['--applied', join(site.stateDir, 'applied.json')]).code).toBe(2);
    expect(site.actions().every((a) => a.includes(' -- '))).toBe(true);
    const dashed = new Site();
    try {
      const config = JSON.parse(readFileSync(dashed.configPath, 'utf8')) as { baselinePath: string };
      const baseline = JSON.parse(readFileSync(config.baselinePath, 'utf8')) as { services: { required: string[] } };
      baseline.services.required = ['--no-block.service'];
      writeFileSync(config.baselinePath, JSON.stringify(baseline));
      dashed.init();
      const r = dashed.cli(['--json']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/services\.required\.0: must be a systemd unit name like sshd\.service \(not starting with a dash\)/);
    } finally {
      dashed.cleanup();
    }
    const inside = new Site({ healDir: '/var/lib/compliance-agent/heal', stateDir: '/var/lib/compliance-agent' });
    try {
      const r = inside.cli(['--json']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/healDir \/var\/lib\/compliance-agent\/heal and stateDir \/var\/lib\/compliance-agent overlap/);
    } finally {
      inside.cleanup();
    }
  });
});
