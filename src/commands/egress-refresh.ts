import { isAbsolute } from 'node:path';
import { RealHost, type Host } from '../host/index.js';
import { refreshEgress, systemResolver, type HostReport, type Resolver } from '../egress/index.js';
import { EXIT, type Command } from './command.js';
import { parseWithConfig } from './config-arg.js';
import { printError } from './output.js';

const USAGE = 'compliance-agent egress-refresh --config C --cache FILE [--status FILE] [--json]';

function describe(r: HostReport): string {
  const list = [...r.addresses.v4, ...r.addresses.v6];
  const shown = list.length > 6 ? `${list.slice(0, 6).join(', ')}, …` : list.join(', ');
  if (r.status === 'resolved') return `${r.host}: ${list.length} address(es) (${shown})`;
  return `${r.host}: DNS failed (${r.reason}); ${list.length ? `kept ${list.length} last good address(es) (${shown})` : 'no address'}`;
}

/** `egress-refresh` with the resolver and host injectable: real ones in the CLI, netns or scripted ones in tests. */
export function createEgressRefreshCommand(deps: { host: () => Host; resolver: () => Resolver }): Command {
  return {
    name: 'egress-refresh',
    summary: 'resolve allowedHosts and timeServers and replace the nftables egress allowlist and NTP sets (exit 1 when a host failed; its last good addresses are kept)',
    usage: USAGE,
    async run(args) {
      // loadConfig reads no file config.json names: egress-refresh runs as its own user and needs
      // allowedHosts only, never the agent's credentials.
      const p = parseWithConfig(args, USAGE, { cache: { type: 'string' }, status: { type: 'string' }, json: { type: 'boolean' } });
      if (!p.ok) return p.code;
      const cache = p.values.cache;
      const status = p.values.status;
      if (typeof cache !== 'string' || !isAbsolute(cache)) {
        printError(`--cache must be an absolute path (egress-refresh's own file of last good addresses)\nusage: ${USAGE}`);
        return EXIT.usage;
      }
      if (status !== undefined && (typeof status !== 'string' || !isAbsolute(status))) {
        printError(`--status must be an absolute path\nusage: ${USAGE}`);
        return EXIT.usage;
      }
      if (p.positionals.length > 0) {
        printError(`unexpected argument "${p.positionals[0]}"\nusage: ${USAGE}`);
        return EXIT.usage;
      }
      const report = await refreshEgress({
        host: deps.host(),
        resolve: deps.resolver(),
        hosts: p.config.allowedHosts,
        timeServers: p.config.timeServers,
        cachePath: cache,
        ...(typeof status === 'string' ? { statusPath: status } : {}),
      });
      if (p.values.json) {
        process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      } else {
        for (const h of report.hosts) process.stdout.write(`${describe(h)}\n`);
        process.stdout.write(
          report.applied
            ? `allowlist replaced: ${report.applied.v4.length} IPv4 and ${report.applied.v6.length} IPv6 address(es); NTP to ${(report.ntp?.v4.length ?? 0) + (report.ntp?.v6.length ?? 0)} time server address(es)\n`
            : 'allowlist NOT replaced: the sets keep their previous elements\n',
        );
      }
      for (const problem of report.problems) printError(`egress-refresh: ${problem}`);
      return report.ok ? EXIT.ok : EXIT.failed;
    },
  };
}

export const egressRefreshCommand = createEgressRefreshCommand({ host: () => new RealHost(), resolver: () => systemResolver() });
