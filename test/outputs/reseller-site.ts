import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../testing/index.js';
import type { ConfigInput } from '../../src/config/index.js';
import type { Rsyslog } from './rsyslog.js';

/**
 * A harness site in reseller mode: the webhook signed with `secret` (written to a 0600 file) and
 * syslog to `rsyslog` over TCP. The webhook URL is a placeholder until a receiver has a port.
 */
export async function startResellerSite(dir: string, secret: string, rsyslog: Rsyslog, config: Partial<ConfigInput> = {}): Promise<{ h: Harness; secretFile: string }> {
  const secretFile = join(dir, 'webhook.secret');
  writeFileSync(secretFile, secret, { mode: 0o600 });
  const h = await startHarness(join(dir, 'site'), {
    config: {
      deploymentMode: 'reseller',
      resellerId: 'msp-alpha',
      allowedHosts: ['localhost', '127.0.0.1'],
      rmmWebhookUrl: 'https://localhost/rmm/hook',
      webhookSecretFile: secretFile,
      syslogTarget: `tcp://127.0.0.1:${rsyslog.ports.tcp}`,
      ...config,
    },
  });
  return { h, secretFile };
}
