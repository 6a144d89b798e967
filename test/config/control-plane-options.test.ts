import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { AgentError } from '../../src/common/index.js';

const key = (name: string, fill: number) => `${name}:${Buffer.alloc(32, fill).toString('base64')}`;
const base = {
  siteId: 'clinic-001',
  hostId: 'appliance-1',
  deploymentMode: 'direct',
  mcpUrl: 'https://mcp.example.net',
  allowedHosts: ['mcp.example.net'],
  baselinePath: '/etc/compliance-agent/baseline.json',
  clientCertFile: '/run/c/client.crt',
  clientKeyFile: '/run/c/client.key',
  signingKeyFile: '/run/c/signing.key',
  caFile: '/etc/compliance-agent/mcp-ca.pem',
  trustedOrderKeys: [key('msp-2026', 7)],
};

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(AgentError);
    return [...(e as AgentError).details];
  }
  throw new Error('config was accepted');
}

describe('mcpReceiptKeys and controlPlaneMaxAge', () => {
  it('default to no pinned receipt key and a 24-hour bound', () => {
    expect(parseConfig(base)).toMatchObject({ mcpReceiptKeys: [], controlPlaneMaxAge: 86_400 });
    expect(parseConfig({ ...base, mcpReceiptKeys: [key('mcp-2026', 1), key('mcp-2027', 2)] }).mcpReceiptKeys).toHaveLength(2);
  });

  it('refuse a malformed or twice-named receipt key and a bound that is not a positive number of seconds up to 30 days', () => {
    expect(problems({ ...base, mcpReceiptKeys: ['mcp-2026:short'] }).join('\n')).toMatch(/mcpReceiptKeys\.0: must be name:base64 of a 32-byte Ed25519 public key/);
    expect(problems({ ...base, mcpReceiptKeys: [key('mcp', 1), key('mcp', 2)] }).join('\n')).toMatch(/mcpReceiptKeys: key name "mcp" appears twice/);
    expect(problems({ ...base, controlPlaneMaxAge: 0 }).join('\n')).toMatch(/controlPlaneMaxAge/);
    expect(problems({ ...base, controlPlaneMaxAge: 31 * 86_400 }).join('\n')).toMatch(/controlPlaneMaxAge/);
  });
});
