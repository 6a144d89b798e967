/**
 * The simulated appliance as real processes: one small POSIX shell script per command the checks
 * run (systemctl, nixos-version, readlink, lsblk, cryptsetup, chronyc, timedatectl, nft), put first
 * on the agent's PATH so RealHost spawns them through execa as it spawns the real tools on an
 * appliance. Each prints, for the arguments the checks pass, what the simulated appliance's command
 * prints (stdout, stderr, exit code), read from it once; other arguments exit 64. While the file
 * `drift` exists, the replies are those of the appliance with its clock off by twice ntpMaxSkewMs
 * and one required unit stopped (services are checked every cycle; a compliant clock is reused for
 * timeCheckInterval). Each run appends its command line to `commands.log`. Only shell built-ins run
 * inside a script, so each check command is exactly one process.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runChecks } from '../src/checks/index.js';
import type { Baseline, Config } from '../src/config/index.js';
import type { ExecResult } from '../src/host/index.js';
import type { SimulatedHost } from '../testing/index.js';

export interface StandIns {
  /** Directory to put first on the agent's PATH. */
  readonly binDir: string;
  /** Create it to put the appliance's clock off; remove it to bring it back. */
  readonly driftFile: string;
  /** Every command line a check cycle without reuse runs. */
  readonly commandLines: readonly string[];
  /** One line per stand-in process run. */
  readonly commandLog: string;
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function reply(r: ExecResult, indent: string): string[] {
  if (r.status !== 'ok' && r.status !== 'nonzero') throw new Error(`the simulated appliance answered ${r.status}; a stand-in replays only exits`);
  return [...(r.stdout ? [`${indent}printf '%s' ${quote(r.stdout)}`] : []), ...(r.stderr ? [`${indent}printf '%s' ${quote(r.stderr)} >&2`] : []), `${indent}exit ${r.exitCode}`];
}

export async function writeStandIns(dir: string, host: SimulatedHost, config: Config, baseline: Baseline): Promise<StandIns> {
  const binDir = join(dir, 'bin');
  const driftFile = join(dir, 'drift');
  const commandLog = join(dir, 'commands.log');
  mkdirSync(binDir, { recursive: true });
  // Both firewall paths: the ruleset snapshot file (what the module configures) and nft.
  host.clearExecuted();
  await runChecks({ host, config: { ...config, rulesetSnapshotFile: null }, baseline });
  const calls = new Map<string, { command: string; args: readonly string[] }>();
  for (const e of host.executed) calls.set([e.command, ...e.args].join(' '), { command: e.command, args: e.args });
  const offset = host.ntpState.offsetMs;
  const stopped = baseline.services.required.find((u) => u === 'postgresql.service') ?? baseline.services.required[0];
  const answer = (command: string, args: readonly string[]) => host.exec(command, args, { timeoutMs: 10_000 });
  const normal = new Map<string, ExecResult>();
  for (const [line, { command, args }] of calls) normal.set(line, await answer(command, args));
  host.setNtpOffsetMs(config.ntpMaxSkewMs * 2);
  if (stopped) host.stopService(stopped);
  const replies = new Map<string, { normal: ExecResult; drift: ExecResult }>();
  for (const [line, { command, args }] of calls) replies.set(line, { normal: normal.get(line)!, drift: await answer(command, args) });
  host.setNtpOffsetMs(offset);
  if (stopped) await answer('systemctl', ['start', stopped]);
  host.clearExecuted();
  const byCommand = new Map<string, string[]>();
  for (const [line, { command, args }] of calls) {
    const { normal, drift } = replies.get(line)!;
    const same = normal.stdout === drift.stdout && normal.stderr === drift.stderr && normal.exitCode === drift.exitCode;
    const branch = [
      `  ${quote(args.join(' '))})`,
      ...(same ? [] : [`    if [ -e ${quote(driftFile)} ]; then`, ...reply(drift, '      '), '    fi']),
      ...reply(normal, '    '),
      '    ;;',
    ];
    byCommand.set(command, [...(byCommand.get(command) ?? []), ...branch]);
  }
  for (const [command, branches] of byCommand) {
    const path = join(binDir, command);
    writeFileSync(
      path,
      [
        '#!/bin/sh',
        `# Stand-in for ${command}: replays the simulated appliance (bench/stand-ins.ts).`,
        `printf '%s %s\\n' ${quote(command)} "$*" >> ${quote(commandLog)}`,
        'case "$*" in',
        ...branches,
        'esac',
        `printf '%s: unexpected arguments: %s\\n' ${quote(command)} "$*" >&2`,
        'exit 64',
        '',
      ].join('\n'),
    );
    chmodSync(path, 0o755);
  }
  return { binDir, driftFile, commandLines: [...calls.keys()], commandLog };
}
