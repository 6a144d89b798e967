import { describe, expect, it, vi } from 'vitest';
import { RealHost } from '../../src/host/index.js';
import { runChecks } from '../../src/checks/index.js';
import type { ExecOptions } from '../../src/host/index.js';
import { applianceContext } from '../helpers/appliance.js';

// execa unusable in this file: what still runs went through node:child_process alone.
vi.mock('execa', () => ({
  execa: () => {
    throw new Error('execa was used');
  },
}));

describe('the query an idle cycle runs, without execa', () => {
  it('RealHost runs an everyCycle command without execa, and any other with it', async () => {
    const host = new RealHost();
    expect(await host.exec('sh', ['-c', 'echo active; exit 3'], { timeoutMs: 10_000, everyCycle: true })).toMatchObject({ status: 'nonzero', exitCode: 3, stdout: 'active\n' });
    await expect(host.exec('true', [], { timeoutMs: 10_000 })).rejects.toThrow('execa was used');
  });

  it('the services check asks for the every-cycle path for systemctl is-active, and only it does', async () => {
    const { host: sim, ctx } = applianceContext();
    const seen: { command: string; everyCycle: boolean }[] = [];
    const exec = sim.exec.bind(sim);
    sim.exec = (command: string, args: readonly string[], o: ExecOptions) => {
      seen.push({ command: [command, ...args.slice(0, 1)].join(' '), everyCycle: o.everyCycle === true });
      return exec(command, args, o);
    };
    try {
      await runChecks(ctx);
    } finally {
      sim.dispose();
    }
    expect(seen.filter((s) => s.everyCycle).map((s) => s.command)).toEqual(['systemctl is-active']);
    expect(seen.length).toBeGreaterThan(1);
  });
});
