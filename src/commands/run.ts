import { describeError } from '../common/index.js';
import { openAgentRuntime, type AgentRuntime } from '../agent/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError, exitCodeFor } from './output.js';
import { progress } from './progress.js';
import type { Config } from '../config/index.js';

function start(config: Config): AgentRuntime | number {
  try {
    return openAgentRuntime(config);
  } catch (e) {
    printError(e);
    return exitCodeFor(e);
  }
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run the agent loop every pollInterval until SIGTERM/SIGINT (finishes the current write, then exits 0)',
  usage: 'compliance-agent run --config C',
  async run(args) {
    const p = parseWithConfig(args, this.usage, {});
    if (!p.ok) return p.code;
    const rt = start(p.config);
    if (typeof rt === 'number') return rt;
    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      rt.logger.info({ signal: sig }, 'stopping after the current step');
      stop.abort();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    rt.logger.info({ siteId: p.config.siteId, hostId: p.config.hostId, mode: p.config.deploymentMode }, 'compliance-agent started');
    try {
      await rt.agent.run(stop.signal);
      return EXIT.ok;
    } catch (e) {
      rt.logger.error(`agent stopped: ${describeError(e)}`);
      return EXIT.failed;
    } finally {
      await rt.close();
    }
  },
};

export const onceCommand: Command = {
  name: 'once',
  summary: 'run one cycle and flush; exit 0 only when nothing is left queued and nothing was dead-lettered',
  usage: 'compliance-agent once --config C',
  async run(args) {
    const p = parseWithConfig(args, this.usage, {});
    if (!p.ok) return p.code;
    const rt = start(p.config);
    if (typeof rt === 'number') return rt;
    const bar = progress();
    try {
      const backlog = rt.agent.pending();
      // The outbox is read between network waits: how far the flush of a backlog has got.
      bar.every(500, () => `once: ${backlog} item(s) were queued; polling, checking, flushing: ${rt.agent.pending()} left`);
      const report = await rt.agent.cycle();
      bar.clear();
      const left = rt.agent.pending();
      const dead = rt.agent.deadLetteredCount;
      process.stdout.write(
        `cycle: poll ${report.polled}, ${report.bundles} bundle(s) created, ${left} item(s) still queued` +
          `${dead > 0 ? `, ${dead} dead-lettered (compliance-agent dead-letters list)` : ''}\n`,
      );
      return left === 0 && dead === 0 ? EXIT.ok : EXIT.failed;
    } catch (e) {
      bar.clear();
      printError(e);
      return EXIT.failed;
    } finally {
      await rt.close();
    }
  },
};
