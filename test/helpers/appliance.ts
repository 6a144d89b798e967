import { parseConfig, type Baseline, type Config, type ConfigInput } from '../../src/config/index.js';
import { baselineFor, simulatedAppliance, type ApplianceOptions, type SimulatedHost } from '../../testing/index.js';
import type { CheckContext } from '../../src/checks/index.js';

/** A valid direct-mode config for tests; paths need not exist unless a test reads them. */
export function testConfig(overrides: Partial<ConfigInput> = {}): Config {
  return parseConfig({
    mcpUrl: 'https://mcp.example.net',
    allowedHosts: ['mcp.example.net'],
    siteId: 'clinic-001',
    hostId: 'clinic-001-appliance',
    deploymentMode: 'direct',
    baselinePath: '/etc/compliance-agent/baseline.json',
    clientCertFile: '/run/credentials/compliance-agent.service/client.crt',
    clientKeyFile: '/run/credentials/compliance-agent.service/client.key',
    signingKeyFile: '/run/credentials/compliance-agent.service/signing.key',
    caFile: '/etc/compliance-agent/mcp-ca.pem',
    trustedOrderKeys: ['msp-2026:' + Buffer.alloc(32, 7).toString('base64')],
    ...overrides,
  });
}

/** A compliant simulated appliance, its baseline and a check context; call host.dispose() after. */
export function applianceContext(opts: ApplianceOptions = {}, config: Config = testConfig()): { host: SimulatedHost; baseline: Baseline; config: Config; ctx: CheckContext } {
  const host = simulatedAppliance(opts);
  const baseline = baselineFor(host);
  return { host, baseline, config, ctx: { host, baseline, config } };
}
