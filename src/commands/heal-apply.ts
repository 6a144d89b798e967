import { createLogger } from '../common/index.js';
import { loadBaseline } from '../config/index.js';
import { RealHost, REBUILD_ENV } from '../host/index.js';
import { applyHealRequests, initHealTree, recordHealerFailure, resolveAgentIdentity } from '../heal/index.js';
import { assertApart } from '../heal/install.js';
import { parseWithConfig } from './config-arg.js';
import { EXIT, type Command } from './command.js';
import { exitCodeFor, printError } from './output.js';

export const healApplyCommand: Command = {
  name: 'heal-apply',
  summary: 'root side of healing: re-verify each request in the drop box, act within the window or hold the order, health-check, roll back, write results',
  usage:
    'compliance-agent heal-apply --config C [--agent-user NAME] [--json | --init | --record-failure WHAT]\n' +
    '  runs as root over config.healDir; --agent-user: the only owner a request may have (default compliance-agent)\n' +
    "  --init: create the healer's tree and state once (refuses to replace an existing state)\n" +
    '  --record-failure: write a failed result for the agent to report (what OnFailure= runs)',
  async run(args) {
    const p = parseWithConfig(args, this.usage, {
      'agent-user': { type: 'string' },
      json: { type: 'boolean' },
      init: { type: 'boolean' },
      'record-failure': { type: 'string' },
    });
    if (!p.ok) return p.code;
    const user = p.values['agent-user'] ?? 'compliance-agent';
    if (typeof user !== 'string' || !/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) {
      printError(`--agent-user must be a user name\nusage: ${this.usage}`);
      return EXIT.usage;
    }
    try {
      assertApart(p.config.healDir, p.config.stateDir);
      const agent = resolveAgentIdentity(user);
      if (p.values.init) {
        initHealTree(p.config.healDir, agent, Date.now());
        process.stdout.write(`healer tree and state created under ${p.config.healDir}\n`);
        return EXIT.ok;
      }
      const failure = p.values['record-failure'];
      if (typeof failure === 'string') {
        recordHealerFailure(p.config.healDir, agent, Date.now(), failure);
        return EXIT.ok;
      }
      const baseline = loadBaseline(p.config.baselinePath);
      const run = await applyHealRequests({
        host: new RealHost({ passEnv: REBUILD_ENV }),
        config: p.config,
        baseline,
        agent,
        logger: createLogger(p.config.logLevel, process.stderr),
      });
      if (p.values.json) {
        process.stdout.write(
          JSON.stringify(
            run.results.map((r) => r.result),
            null,
            2,
          ) + '\n',
        );
      } else {
        // Reasons are single, bounded lines (safeReason): no request can add a line here.
        for (const { result } of run.results) {
          process.stdout.write(`${result.request_id ?? '-'} order ${result.order_id ?? '-'}: ${result.outcome}${result.reason ? ` (${result.reason})` : ''}\n`);
        }
        if (run.results.length === 0) process.stdout.write('no heal requests\n');
      }
      return EXIT.ok;
    } catch (e) {
      printError(e);
      return exitCodeFor(e);
    }
  },
};
