import { loadBaseline, type Baseline, type Config } from '../config/index.js';
import { RealHost, type Host } from '../host/index.js';
import { CHECK_NAMES, getCheck, isCheckName, runChecks, systemFacts, type CheckName, type CheckResult } from '../checks/index.js';
import { healIsDisruptive } from '../heal/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { exitCodeFor, printError } from './output.js';

const USAGE = `compliance-agent check --config C [--json] [--only ${CHECK_NAMES.join(',')}]`;

function formatTable(results: readonly CheckResult[], hostId: string): string {
  const cw = Math.max(5, ...results.map((r) => r.check.length));
  const sw = Math.max(6, ...results.map((r) => r.status.length));
  const indent = ' '.repeat(cw + sw + 4);
  const lines = [`${'CHECK'.padEnd(cw)}  ${'STATUS'.padEnd(sw)}  SUMMARY`];
  for (const r of results) {
    lines.push(`${r.check.padEnd(cw)}  ${r.status.padEnd(sw)}  ${r.summary}`);
    lines.push(`${indent}controls: ${(getCheck(r.check)?.controls ?? []).join(', ')}`);
  }
  const count = (s: CheckResult['status']): number => results.filter((r) => r.status === s).length;
  lines.push('', `${results.length} check(s) on ${hostId}: ${count('compliant')} compliant, ${count('drift')} drift, ${count('error')} error`);
  return lines.join('\n') + '\n';
}

function toJson(results: readonly CheckResult[], config: Config, baseline: Baseline, checkedAt: number): unknown {
  return {
    site_id: config.siteId,
    host_id: config.hostId,
    checked_at: new Date(checkedAt).toISOString(),
    compliant: results.every((r) => r.status === 'compliant'),
    facts: systemFacts(results),
    results: results.map((r) => {
      const check = getCheck(r.check);
      return { ...r, controls: check?.controls ?? [], disruptive: check ? healIsDisruptive(r, baseline) : null, heal: check?.heal ?? null };
    }),
  };
}

/** `check` on whatever host `makeHost` gives: the real machine in the CLI, a simulated appliance in tests. */
export function createCheckCommand(makeHost: (config: Config) => Host): Command {
  return {
    name: 'check',
    summary: 'run the drift checks against the baseline and print the results (exit 0 only when all are compliant)',
    usage: USAGE,
    async run(args) {
      const p = parseWithConfig(args, USAGE, { json: { type: 'boolean' }, only: { type: 'string' } });
      if (!p.ok) return p.code;
      if (p.positionals.length > 0) {
        printError(`unexpected argument "${p.positionals[0]}"\nusage: ${USAGE}`);
        return EXIT.usage;
      }
      let names: CheckName[] | undefined;
      if (typeof p.values.only === 'string') {
        const wanted = p.values.only
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
        const unknown = wanted.filter((n) => !isCheckName(n));
        if (unknown.length > 0 || wanted.length === 0) {
          printError(`--only: ${unknown.length ? `unknown check(s) ${unknown.map((u) => `"${u}"`).join(', ')}` : 'no check named'}; known: ${CHECK_NAMES.join(', ')}`);
          return EXIT.usage;
        }
        names = wanted.filter(isCheckName);
      }
      let baseline: Baseline;
      try {
        baseline = loadBaseline(p.config.baselinePath);
      } catch (e) {
        printError(e);
        return exitCodeFor(e);
      }
      const host = makeHost(p.config);
      const results = await runChecks({ host, config: p.config, baseline }, names);
      process.stdout.write(p.values.json ? JSON.stringify(toJson(results, p.config, baseline, host.now()), null, 2) + '\n' : formatTable(results, p.config.hostId));
      return results.every((r) => r.status === 'compliant') ? EXIT.ok : EXIT.failed;
    },
  };
}

export const checkCommand = createCheckCommand(() => new RealHost());
