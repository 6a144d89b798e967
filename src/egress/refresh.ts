import type { Host } from '../host/index.js';
import { errnoCode, firstLine, oneLine, writeFileAtomic } from '../common/index.js';
import { readLastGood, writeLastGood, type CachedHost } from './cache.js';
import { replaceSetsScript } from './nft-script.js';
import { splitAddresses, type Addresses, type Resolver } from './resolve.js';
import { EGRESS_TABLE, type EgressTable } from './table.js';

export interface RefreshOptions {
  readonly host: Host;
  readonly resolve: Resolver;
  /** allowedHosts from config.json. */
  readonly hosts: readonly string[];
  /** timeServers from config.json: their addresses become the only NTP destinations. */
  readonly timeServers?: readonly string[];
  /** Last good answers, egress-refresh's own file. */
  readonly cachePath: string;
  /** Optional report for other readers (the agent): world-readable, holds no secret. */
  readonly statusPath?: string;
  readonly table?: EgressTable;
  readonly nftTimeoutMs?: number;
}

export type HostReport =
  | { readonly host: string; readonly status: 'resolved'; readonly addresses: Addresses }
  /** DNS failed; `addresses` are the last good ones (empty when there were none). */
  | { readonly host: string; readonly status: 'failed'; readonly reason: string; readonly addresses: Addresses; readonly lastGoodAt: string | null };

export interface RefreshReport {
  /** True only when every host resolved and the sets were replaced. */
  readonly ok: boolean;
  readonly at: string;
  readonly hosts: readonly HostReport[];
  /** What the sets hold now, when they were replaced; null when they were left as they were. */
  readonly applied: Addresses | null;
  /** What the NTP sets hold now, when the sets were replaced. */
  readonly ntp: Addresses | null;
  /** One line per thing that went wrong, naming the host or file. */
  readonly problems: readonly string[];
}

function union(parts: readonly Addresses[]): Addresses {
  return splitAddresses(parts.flatMap((p) => [...p.v4, ...p.v6]));
}

/**
 * Resolve allowedHosts and replace the allowlist sets in one nft transaction. A host whose DNS
 * lookup fails keeps its last good addresses, and the failure is reported; the sets are never
 * emptied because DNS failed. Run again after nftables recreates the table (every start and
 * reload), the same code path fills the new, empty sets.
 */
export async function refreshEgress(opts: RefreshOptions): Promise<RefreshReport> {
  const table = opts.table ?? EGRESS_TABLE;
  const at = new Date(opts.host.now()).toISOString();
  const problems: string[] = [];

  const cache = readLastGood(opts.cachePath);
  if (!cache.ok) problems.push(cache.message);

  const timeServers = [...new Set(opts.timeServers ?? [])];
  const hosts = [...new Set([...opts.hosts, ...timeServers])];
  const answers = await Promise.all(hosts.map((h) => opts.resolve(h)));
  const reports: HostReport[] = hosts.map((host, i) => {
    const answer = answers[i]!;
    if (answer.ok) return { host, status: 'resolved', addresses: answer.addresses };
    const last = cache.hosts.get(host);
    problems.push(
      last
        ? `${host}: DNS lookup failed (${answer.reason}); keeping its ${last.v4.length + last.v6.length} last good address(es) from ${last.resolvedAt}`
        : `${host}: DNS lookup failed (${answer.reason}) and there is no last good address: it stays unreachable`,
    );
    return { host, status: 'failed', reason: answer.reason, addresses: last ?? { v4: [], v6: [] }, lastGoodAt: last?.resolvedAt ?? null };
  });

  const nextCache = new Map<string, CachedHost>();
  for (const r of reports) {
    if (r.status === 'resolved') nextCache.set(r.host, { ...r.addresses, resolvedAt: at });
    else {
      const last = cache.hosts.get(r.host);
      if (last) nextCache.set(r.host, last);
    }
  }

  const isTimeServer = new Set(timeServers);
  const allowed = new Set(opts.hosts);
  const wanted = union(reports.filter((r) => allowed.has(r.host)).map((r) => r.addresses));
  const ntp = union(reports.filter((r) => isTimeServer.has(r.host)).map((r) => r.addresses));
  let applied: Addresses | null = null;
  if (wanted.v4.length + wanted.v6.length === 0) {
    problems.push(`no address for any of ${hosts.length} allowed host(s): the sets in ${table.family} ${table.name} were left as they are`);
  } else {
    const r = await opts.host.exec('nft', ['-f', '-'], { input: replaceSetsScript(table, wanted, ntp), timeoutMs: opts.nftTimeoutMs ?? 15_000 });
    if (r.status === 'ok') {
      applied = wanted;
    } else if (r.status === 'missing') {
      problems.push('nft: command not found (nftables is not installed or not on PATH); the allowlist was not updated');
    } else if (/No such file or directory/.test(r.stderr)) {
      problems.push(
        `nft: table ${table.family} ${table.name} or its sets do not exist (is nftables.service running with the compliance-agent table?); the allowlist was not updated`,
      );
    } else if (/Operation not permitted/.test(r.stderr)) {
      problems.push('nft: permission denied (egress-refresh needs CAP_NET_ADMIN); the allowlist was not updated');
    } else {
      problems.push(`nft ${r.status === 'timeout' ? 'timed out' : `failed (exit ${r.exitCode ?? r.status})`}: ${oneLine(firstLine(r.stderr))}; the allowlist was not updated`);
    }
  }

  try {
    writeLastGood(opts.cachePath, nextCache);
  } catch (e) {
    problems.push(`${opts.cachePath}: cannot save the last good addresses (${errnoCode(e, 'error')})`);
  }

  const report: RefreshReport = { ok: problems.length === 0, at, hosts: reports, applied, ntp: applied ? ntp : null, problems };
  if (opts.statusPath) {
    try {
      writeFileAtomic(opts.statusPath, JSON.stringify(report, null, 2) + '\n', 0o644);
    } catch (e) {
      problems.push(`${opts.statusPath}: cannot write the status (${errnoCode(e, 'error')})`);
      return { ...report, ok: false, problems };
    }
  }
  return report;
}
