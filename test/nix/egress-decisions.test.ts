import { describe, expect, it } from 'vitest';
import { render, resellerOptions, run } from './nix.js';

function evalExpr<T>(expr: string): T {
  return JSON.parse(run('nix-instantiate', ['--eval', '--strict', '--json', '--expr', expr])) as T;
}

const reseller = resellerOptions();

describe('egress.enable and networking.nftables.enable (modules/lib/egress.nix)', () => {
  const assertion = (egressEnable: boolean, nftablesEnable: boolean) =>
    evalExpr<{ assertion: boolean; message: string }>(
      `(import ./modules/lib/egress.nix).nftablesAssertion { egressEnable = ${egressEnable}; nftablesEnable = ${nftablesEnable}; }`,
    );

  it('refuses the allowlist without nftables, saying what to set and what it changes', () => {
    const a = assertion(true, false);
    expect(a.assertion).toBe(false);
    expect(a.message).toMatch(/^services\.compliance-agent\.egress\.enable: the egress allowlist is an nftables table, but networking\.nftables\.enable is false\./);
    expect(a.message).toContain('Set networking.nftables.enable = true');
    expect(a.message).toContain('networking.firewall.extraCommands');
    expect(a.message).toContain('services.compliance-agent.egress.enable = false');
  });

  it('accepts nftables on, or the allowlist off', () => {
    expect(assertion(true, true).assertion).toBe(true);
    expect(assertion(false, false).assertion).toBe(true);
  });
});

describe('egress.agentAddressAllow (IPAddressAllow= of the agent unit)', () => {
  it('is off while the list is empty', () => {
    expect(render({}, reseller).agentAddressAllow).toEqual({ addresses: [], unreachable: [] });
  });

  it('in reseller mode, refuses sinks given by name: the filter would block them silently', () => {
    const r = render({}, { ...reseller, egress: { agentAddressAllow: ['203.0.113.10'] } });
    expect(r.agentAddressAllow.unreachable).toEqual(['rmm.example.com', 'siem.example.com']);
    expect(r.agentAddressAllowAssertion.assertion).toBe(false);
    expect(r.agentAddressAllowAssertion.message).toBe(
      "services.compliance-agent.egress.agentAddressAllow: in reseller mode the agent also sends to rmm.example.com and siem.example.com, given by name; the unit's IPAddressAllow= would block them without a word. Give rmmWebhookUrl and syslogTarget by IP address, or leave egress.agentAddressAllow empty (the nftables allowlist still holds the agent to allowedHosts).",
    );
  });

  it('lets through sinks and an MCP given by address, with the resolvers', () => {
    const r = render(
      {},
      {
        ...reseller,
        mcpUrl: 'https://[2001:db8::5]/mcp',
        allowedHosts: ['2001:db8::5', '198.51.100.4', '198.51.100.5'],
        rmmWebhookUrl: 'https://198.51.100.4:8443/hooks',
        syslogTarget: 'tcp://198.51.100.5:514',
        egress: { agentAddressAllow: ['203.0.113.10'], resolvers: ['10.0.0.53'] },
      },
    );
    expect(r.agentAddressAllow).toEqual({ addresses: ['203.0.113.10', '2001:db8::5', '198.51.100.4', '198.51.100.5', '10.0.0.53'], unreachable: [] });
    expect(r.agentAddressAllowAssertion.assertion).toBe(true);
  });

  it('in direct mode the sinks are not used, so nothing is refused', () => {
    const r = render({}, { ...reseller, deploymentMode: 'direct', egress: { agentAddressAllow: ['203.0.113.10'] } });
    expect(r.agentAddressAllow).toEqual({ addresses: ['203.0.113.10'], unreachable: [] });
    expect(r.agentAddressAllowAssertion.assertion).toBe(true);
  });
});
