import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/index.js';
import { identityPaths } from '../../src/identity/index.js';
import { nixEval, render, run } from './nix.js';

const sample = nixEval<ReturnType<typeof render>>('checks/pure-helpers.nix');
const enrolling = {
  ...sample.defaults,
  siteId: 'clinic-001',
  hostId: 'appliance-1',
  resellerId: 'msp-alpha',
  mcpUrl: 'https://mcp.example.com',
  allowedHosts: ['mcp.example.com'],
  baselinePath: '/nix/store/00000000000000000000000000000000-compliance-agent-baseline.json',
  caFile: '/run/secrets/compliance-agent/mcp-ca.pem',
  clientCertFile: null,
  clientKeyFile: null,
  signingKeyFile: null,
  trustedOrderKeys: ['msp-2026:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='],
  enrollment: { tokenFile: '/run/secrets/compliance-agent/enrollment-token', renewBeforeDays: 21 },
};

describe('module helpers with enrollment.tokenFile', () => {
  const r = render({}, enrolling);

  it('config.json names the identity the appliance makes in the agent state directory, and the agent accepts it', () => {
    const parsed = ConfigSchema.safeParse(r.config);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
    expect(r.config).toMatchObject({
      clientCertFile: '/var/lib/compliance-agent/identity/client-cert.pem',
      clientKeyFile: '/var/lib/compliance-agent/identity/client-key.pem',
      signingKeyFile: '/var/lib/compliance-agent/identity/evidence-signing.key',
      caFile: `${sample.credentialsDir}/mcp-ca.pem`,
      machineIdFile: '/etc/machine-id',
      certRenewBeforeDays: 21,
    });
    // The enrollment record sits beside the certificate, in the same private directory.
    expect(identityPaths(ConfigSchema.parse(r.config) as never).record).toBe('/var/lib/compliance-agent/identity/enrollment.json');
  });

  it('the agent unit loads only the CA as a credential; the enrollment unit gets the token and the CA', () => {
    expect(r.loadCredentials).toEqual(['mcp-ca.pem:/run/secrets/compliance-agent/mcp-ca.pem']);
    const unit = JSON.parse(
      run('nix-instantiate', [
        '--eval',
        '--strict',
        '--json',
        '--expr',
        `let c = import ./modules/lib/config.nix; s = import ./modules/lib/services.nix; cfg = builtins.fromJSON ''${JSON.stringify(enrolling)}''; in s.enroll { exe = "/bin/compliance-agent"; configFile = "/etc/c.json"; loadCredentials = c.enrollCredentials cfg; removeToken = "/bin/rm -f -- ${enrolling.enrollment.tokenFile}"; }`,
      ]),
    ) as Record<string, unknown>;
    expect(unit).toMatchObject({
      Type: 'oneshot',
      User: 'compliance-agent',
      StateDirectory: 'compliance-agent',
      StateDirectoryMode: '0700',
      CapabilityBoundingSet: '',
      ExecStart:
        '/bin/compliance-agent enroll --config /etc/c.json --token-file /run/credentials/compliance-agent-enroll.service/enrollment-token --ca-file /run/credentials/compliance-agent-enroll.service/mcp-ca.pem --keep-token',
      ExecStartPost: '+/bin/rm -f -- /run/secrets/compliance-agent/enrollment-token',
      LoadCredential: ['enrollment-token:/run/secrets/compliance-agent/enrollment-token', 'mcp-ca.pem:/run/secrets/compliance-agent/mcp-ca.pem'],
    });
  });

  it('without enrollment, the identity still comes as credentials (unchanged)', () => {
    expect(sample.loadCredentials).toContain('client-cert.pem:/run/secrets/compliance-agent/client.pem');
    expect(sample.config.certRenewBeforeDays).toBe(30);
  });
});
