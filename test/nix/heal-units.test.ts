import { afterAll, describe, expect, it } from 'vitest';
import { lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AGENT_USER, Site } from '../privsep/site.js';
import { nixEval, run } from './nix.js';

interface HealRendered {
  heal: { service: string; path: string; timer: string; tmpfiles: string[] };
  config: { healDir: string; stateDir: string; maintenanceWindow: string };
}

const rendered = nixEval<HealRendered>('checks/pure-helpers.nix');
const site = new Site();
afterAll(() => site.cleanup());

describe("the healer's units and tree as the module renders them", () => {
  it('the path unit is an edge trigger on the drop box, rate-limited; the service is start-limited with an OnFailure that leaves evidence', () => {
    expect(rendered.heal.path).toContain(`\nPathChanged=${rendered.config.healDir}/requests\n`);
    expect(rendered.heal.path).not.toMatch(/DirectoryNotEmpty|PathExistsGlob/);
    expect(rendered.heal.path).toMatch(/\nTriggerLimitBurst=\d+\nTriggerLimitIntervalSec=\S+\n/);
    expect(rendered.heal.service).toMatch(/\nOnFailure=compliance-agent-heal-failed\.service\nStartLimitBurst=\d+\nStartLimitIntervalSec=\S+\n/);
    expect(rendered.heal.service).toContain(' heal-apply --config /etc/compliance-agent/config.json --agent-user compliance-agent\n');
    expect(rendered.heal.service).not.toContain('--applied');
  });

  it('the timer fires when the maintenance window opens (systemd-analyze calendar)', () => {
    const onCalendar = /\nOnCalendar=(.+)\n/.exec(rendered.heal.timer)![1]!;
    const out = run('systemd-analyze', ['calendar', onCalendar]);
    expect(out).toMatch(new RegExp(`Next elapse: \\w+ \\d{4}-\\d\\d-\\d\\d ${rendered.config.maintenanceWindow.slice(0, 5)}:00 UTC`));
  });

  it('systemd-tmpfiles makes the tree the healer accepts: heal-apply --init then runs on it', () => {
    // The module's rules, moved under a test directory and given the test's agent user.
    const rules = rendered.heal.tmpfiles.map((l) => l.replaceAll(rendered.config.healDir, site.healDir).replaceAll(' compliance-agent ', ` ${AGENT_USER} `));
    const conf = join(site.base, 'heal.conf');
    writeFileSync(conf, rules.join('\n') + '\n');
    run('systemd-tmpfiles', ['--create', conf]);
    const mode = (p: string) => `${(lstatSync(p).mode & 0o7777).toString(8)} ${lstatSync(p).uid} ${lstatSync(p).gid}`;
    expect(mode(join(site.healDir, 'state'))).toBe('700 0 0');
    expect(mode(site.requests)).toBe(`1770 0 ${site.gid}`);
    expect(mode(site.results)).toBe(`750 0 ${site.gid}`);
    site.init();
    expect(site.heal()).toEqual([]);
    // The init unit's command refuses to replace the state it made.
    expect(site.cli(['--init']).code).toBe(1);
  });
});
