import { createLogger } from '../common/index.js';
import { loadBaseline } from '../config/index.js';
import { RealHost, REBUILD_ENV } from '../host/index.js';
import { applyHealRequests } from '../heal/index.js';
import { parseWithConfig } from './config-arg.js';
import { EXIT, type Command } from './command.js';
import { exitCodeFor, printError } from './output.js';

export const healApplyCommand: Command = {
  name: 'heal-apply',
  summary: 'root side of healing: re-verify each spooled heal request, act within the window, health-check, roll back, write results',
  usage:
    'compliance-agent heal-apply --config C [--applied PATH] [--json]\n' +
    '  --applied: the healer\'s record of applied requests (default STATE_DIR/heal/applied.json); put it where only root can write',
  async run(args) {
    const p = parseWithConfig(args, this.usage, { applied: { type: 'string' }, json: { type: 'boolean' } });
    if (!p.ok) return p.code;
    const applied = p.values.applied;
    if (applied !== undefined && (typeof applied !== 'string' || !applied.startsWith('/'))) {
      printError(`--applied must be an absolute path\nusage: ${this.usage}`);
      return EXIT.usage;
    }
    let baseline;
    try {
      baseline = loadBaseline(p.config.baselinePath);
    } catch (e) {
      printError(e);
      return exitCodeFor(e);
    }
    try {
      const run = await applyHealRequests({
        host: new RealHost({ passEnv: REBUILD_ENV }),
        config: p.config,
        baseline,
        logger: createLogger(p.config.logLevel, process.stderr),
        ...(applied ? { appliedPath: applied } : {}),
      });
      if (p.values.json) {
        process.stdout.write(JSON.stringify(run.results.map((r) => r.result), null, 2) + '\n');
      } else {
        for (const { result } of run.results) {
          process.stdout.write(`${result.request_id} order ${result.order_id ?? '-'}: ${result.outcome}${result.reason ? ` (${result.reason})` : ''}\n`);
        }
        if (run.results.length === 0) process.stdout.write('no heal requests\n');
      }
      return EXIT.ok;
    } catch (e) {
      printError(e);
      return EXIT.failed;
    }
  },
};
