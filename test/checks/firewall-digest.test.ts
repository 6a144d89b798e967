import { describe, expect, it, vi } from 'vitest';
import { getCheck } from '../../src/checks/index.js';
import { normaliseRuleset } from '../../src/checks/ruleset.js';
import { applianceContext, testConfig } from '../helpers/appliance.js';

vi.mock('../../src/checks/ruleset.js', async (importOriginal) => {
  const m = await importOriginal<typeof import('../../src/checks/ruleset.js')>();
  return { ...m, normaliseRuleset: vi.fn(m.normaliseRuleset) };
});

describe('firewall check over an unchanged snapshot', () => {
  it('normalises a snapshot once while its text stays the same, and again on any change', async () => {
    const path = '/run/compliance-agent/ruleset.nft';
    const s = applianceContext({}, testConfig({ rulesetSnapshotFile: path, pollInterval: 60 }));
    try {
      const check = getCheck('firewall')!;
      const original = s.host.ruleset;
      s.host.writeFile(path, original, { mtimeMs: s.host.now() });
      const first = await check.run(s.ctx);
      const second = await check.run(s.ctx);
      expect(first.status).toBe('compliant');
      expect(second).toMatchObject({ status: 'compliant', observed: first.observed });
      expect(normaliseRuleset).toHaveBeenCalledTimes(1);
      s.host.writeFile(path, original.replace('tcp dport { 22, 443 } accept', 'tcp dport { 22, 443, 5432 } accept'), { mtimeMs: s.host.now() });
      expect((await check.run(s.ctx)).status).toBe('drift');
      s.host.writeFile(path, original, { mtimeMs: s.host.now() });
      expect((await check.run(s.ctx)).status).toBe('compliant');
      expect(normaliseRuleset).toHaveBeenCalledTimes(3);
    } finally {
      s.host.dispose();
    }
  });
});
