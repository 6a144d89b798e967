import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { startHarness, type Harness } from '../../testing/index.js';
import { createLogger } from '../../src/common/index.js';
import { readPreviousExit } from '../../src/agent/index.js';
import { stateLayout } from '../../src/state/index.js';
import { tempDir } from '../helpers/tmp.js';
import { receivedBundles } from '../helpers/evidence.js';

const tmp = tempDir();
let h: Harness;

beforeAll(async () => {
  h = await startHarness(tmp.path);
  mkdirSync(h.config.stateDir, { recursive: true });
});
afterAll(async () => {
  await h?.close();
  tmp.cleanup();
});

const agentAlerts = () => receivedBundles(h.mcp, h.agentPublicKey).filter((b) => b.check === 'agent');
const file = () => stateLayout(h.config.stateDir).previousExit;

/** What the unit's ExecStopPost= writes (its rendering is run for real in test/nix). */
function stopped(line: string, atMs?: number): void {
  writeFileSync(file(), line, { mode: 0o600 });
  if (atMs !== undefined) utimesSync(file(), atMs / 1000, atMs / 1000);
}

async function startOnce(): Promise<string[]> {
  const log: string[] = [];
  const rt = h.openAgent({ logger: createLogger('INFO', { write: (l: string) => void log.push(l) }) });
  await rt.agent.cycle();
  expect(rt.agent.pending()).toBe(0);
  await rt.close();
  h.host.advance(60_000);
  return log;
}

describe("how the previous run ended (the unit's ExecStopPost= record)", () => {
  it('parses the line ExecStopPost= writes and nothing else', () => {
    stopped('SERVICE_RESULT=oom-kill EXIT_CODE=killed EXIT_STATUS=KILL\n', Date.UTC(2026, 10, 23, 11, 0, 0));
    expect(readPreviousExit(h.config.stateDir)).toEqual({
      kind: 'exit',
      exit: { serviceResult: 'oom-kill', exitCode: 'killed', exitStatus: 'KILL', at: Date.UTC(2026, 10, 23, 11, 0, 0) },
    });
    stopped('SERVICE_RESULT=oom-kill; rm -rf /\n');
    expect(readPreviousExit(h.config.stateDir)).toMatchObject({ kind: 'bad', message: expect.stringContaining('does not hold "SERVICE_RESULT=') });
    stopped('x'.repeat(4096));
    expect(readPreviousExit(h.config.stateDir)).toMatchObject({ kind: 'bad', message: expect.stringContaining('4096 bytes') });
  });

  it('after a kill by the memory limit, the next start chains one alert bundle saying so, once', async () => {
    const killedAt = h.host.now() - 30_000;
    stopped('SERVICE_RESULT=oom-kill EXIT_CODE=killed EXIT_STATUS=KILL\n', killedAt);
    const log = await startOnce();
    const alerts = agentAlerts();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      check: 'agent',
      outcome: 'failed',
      pre_state: { serviceResult: 'oom-kill', exitCode: 'killed', exitStatus: 'KILL' },
      timestamp_start: new Date(Math.round(killedAt / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
    });
    expect(alerts[0]!.reason).toMatch(/killed by the kernel's OOM killer at its unit's memory limit \(systemd MemoryMax=/);
    expect(log.join('')).toContain('the previous run of the agent was killed by its memory limit');
    expect(existsSync(file())).toBe(false);

    await startOnce();
    expect(agentAlerts()).toHaveLength(1);
  });

  it('a clean stop, another failure or a garbled record chain nothing, and the agent runs on', async () => {
    stopped('SERVICE_RESULT=success EXIT_CODE=exited EXIT_STATUS=0\n');
    expect((await startOnce()).join('')).not.toContain('previous run');
    expect(existsSync(file())).toBe(false);

    stopped('SERVICE_RESULT=signal EXIT_CODE=killed EXIT_STATUS=SEGV\n');
    expect((await startOnce()).join('')).toContain('the previous run of the agent ended abnormally (SERVICE_RESULT=signal, EXIT_CODE=killed, EXIT_STATUS=SEGV)');

    stopped('\u0000garbage');
    expect((await startOnce()).join('')).toContain('ignoring the record of the previous run');
    expect(existsSync(file())).toBe(false);
    expect(agentAlerts()).toHaveLength(1);
  });
});
