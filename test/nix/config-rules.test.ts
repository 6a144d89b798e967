import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/index.js';
import { render, resellerOptions } from './nix.js';

// One option set the module and the agent both accept; each case below breaks (or keeps) one rule.
const base = {
  ...resellerOptions(),
  allowedHosts: ['mcp.example.com', 'rmm.example.com', 'siem.example.com', 'cache.example.com'],
  trustedOrderKeys: ['msp:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=', 'msp-2:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA='],
};

const KEY_C = 'CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCA=';
const cases: [string, Record<string, unknown>, 'accepted' | 'refused'][] = [
  ['the base options', {}, 'accepted'],
  ['reseller mode without resellerId', { resellerId: null }, 'refused'],
  [
    'direct mode without resellerId',
    { deploymentMode: 'direct', resellerId: null, syslogCaFile: null, syslogTarget: null, rmmWebhookUrl: null, webhookSecretFile: null },
    'accepted',
  ],
  ['an mcpUrl host outside allowedHosts', { mcpUrl: 'https://elsewhere.example.com' }, 'refused'],
  ['rmmWebhookUrl without webhookSecretFile in reseller mode', { webhookSecretFile: null }, 'refused'],
  ['an rmmWebhookUrl host outside allowedHosts', { rmmWebhookUrl: 'https://rmm.elsewhere.example/hooks' }, 'refused'],
  ['a syslogTarget host outside allowedHosts', { syslogTarget: 'tls://siem.elsewhere.example:6514' }, 'refused'],
  ['a tls:// syslogTarget without syslogCaFile in reseller mode', { syslogCaFile: null }, 'refused'],
  ['syslogCaFile with a tcp:// syslogTarget', { syslogTarget: 'tcp://siem.example.com:514' }, 'refused'],
  ['a tcp:// syslogTarget without syslogCaFile', { syslogTarget: 'tcp://siem.example.com:514', syslogCaFile: null }, 'accepted'],
  ['webhookCaFile without rmmWebhookUrl', { rmmWebhookUrl: null, webhookCaFile: '/etc/compliance-agent/rmm-ca.pem' }, 'refused'],
  ['closureSubstituters without closureTrustedPublicKeys', { closureSubstituters: ['https://cache.example.com'] }, 'refused'],
  ['closureSubstituters with closureTrustedPublicKeys', { closureSubstituters: ['https://cache.example.com'], closureTrustedPublicKeys: [`cache-1:${KEY_C}`] }, 'accepted'],
  ['orderSignaturesRequired within the distinct trusted keys', { orderSignaturesRequired: { apply_baseline: 2 } }, 'accepted'],
  ['orderSignaturesRequired above the distinct trusted keys', { orderSignaturesRequired: { apply_baseline: 3 } }, 'refused'],
  ['orderSignaturesRequired counting one key under two names once', { trustedOrderKeys: [`a:${KEY_C}`, `b:${KEY_C}`], orderSignaturesRequired: { apply_baseline: 2 } }, 'refused'],
];

describe("the module's assertions (modules/lib/config-rules.nix) and the agent's ConfigSchema give the same verdict", () => {
  it.each(cases)('%s', (_name, change, verdict) => {
    const rendered = render({}, { ...base, ...change }) as ReturnType<typeof render> & { configRules: { assertion: boolean; message: string }[] };
    const failed = rendered.configRules.filter((r) => !r.assertion).map((r) => r.message);
    const zod = ConfigSchema.safeParse(rendered.config);
    const zodIssues = zod.success ? [] : zod.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect({ nix: failed.length === 0 ? 'accepted' : 'refused', agent: zod.success ? 'accepted' : 'refused' }).toEqual({ nix: verdict, agent: verdict });
    // The same option is named on both sides.
    for (const issue of zodIssues) expect(failed.join('\n')).toContain(issue.split(':')[0]!.split('.')[0]!);
  });
});
