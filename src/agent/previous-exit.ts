import { readFileSync, rmSync, statSync } from 'node:fs';
import type { Logger } from '../common/index.js';
import type { Config } from '../config/index.js';
import type { SystemFacts } from '../checks/index.js';
import type { EvidenceDraft } from '../evidence/index.js';
import { stateLayout } from '../state/index.js';
import { makeDraft } from './drafts.js';
import { errnoCode } from '../common/index.js';

/** systemd's $SERVICE_RESULT when the kernel's OOM killer ended the unit: here, its MemoryMax=. */
const OOM_KILL = 'oom-kill';

const LINE = /^SERVICE_RESULT=([a-z-]*) EXIT_CODE=([a-z]*) EXIT_STATUS=([A-Za-z0-9]*)\n?$/;
const MAX_BYTES = 256;

export interface PreviousExit {
  readonly serviceResult: string;
  readonly exitCode: string;
  readonly exitStatus: string;
  /** When ExecStopPost= wrote it: when the previous run ended. */
  readonly at: number;
}

export type PreviousExitRead = { readonly kind: 'none' } | { readonly kind: 'exit'; readonly exit: PreviousExit } | { readonly kind: 'bad'; readonly message: string };

export function readPreviousExit(stateDir: string): PreviousExitRead {
  const path = stateLayout(stateDir).previousExit;
  let text: string;
  let at: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) return { kind: 'bad', message: `${path} is not a regular file` };
    if (st.size > MAX_BYTES) return { kind: 'bad', message: `${path} is ${st.size} bytes, more than the one line systemd's ExecStopPost= writes` };
    at = st.mtimeMs;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { kind: 'none' };
    return { kind: 'bad', message: `${path}: ${(e as Error).message}` };
  }
  const m = LINE.exec(text);
  if (!m) return { kind: 'bad', message: `${path} does not hold "SERVICE_RESULT=... EXIT_CODE=... EXIT_STATUS=..." ("${text.slice(0, 80).replace(/[^\x20-\x7e]/g, '?')}")` };
  return { kind: 'exit', exit: { serviceResult: m[1]!, exitCode: m[2]!, exitStatus: m[3]!, at: Math.round(at) } };
}

/** Alerts the agent chains in its first cycle; `ack` runs once they are durably chained. */
export interface StartAlerts {
  drafts(facts: SystemFacts): EvidenceDraft[];
  ack(): void;
}

/**
 * What the previous run's end means for this one: an alert bundle when the memory limit killed
 * it, a log line for any other abnormal end. The file is removed once the alert is chained, so a
 * crash before that repeats the alert rather than losing it.
 */
export function previousExitAlerts(config: Config, logger: Logger): StartAlerts | undefined {
  const read = readPreviousExit(config.stateDir);
  if (read.kind === 'none') return undefined;
  const path = stateLayout(config.stateDir).previousExit;
  const ack = () => rmSync(path, { force: true });
  if (read.kind === 'bad') {
    logger.warn(`ignoring the record of the previous run: ${read.message}`);
    return { drafts: () => [], ack };
  }
  const { serviceResult, exitCode, exitStatus, at } = read.exit;
  const described = `SERVICE_RESULT=${serviceResult}, EXIT_CODE=${exitCode}, EXIT_STATUS=${exitStatus}`;
  if (serviceResult !== OOM_KILL) {
    if (serviceResult !== 'success') logger.warn({ serviceResult, exitCode, exitStatus }, `the previous run of the agent ended abnormally (${described})`);
    return { drafts: () => [], ack };
  }
  logger.error({ serviceResult, exitCode, exitStatus }, 'the previous run of the agent was killed by its memory limit');
  return {
    drafts: (facts) => [
      makeDraft(config, facts, {
        check: 'agent',
        outcome: 'failed',
        startedAt: at,
        endedAt: at,
        controls: ['SOC 2 A1.2', 'SOC 2 CC7.2'],
        preState: { serviceResult, exitCode, exitStatus },
        reason: `the previous run of the agent was killed by the kernel's OOM killer at its unit's memory limit (systemd MemoryMax=; ${described}); checks and evidence stopped until this restart`,
      }),
    ],
    ack,
  };
}
