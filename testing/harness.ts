import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePki, type Pki } from './pki.js';
import { startReferenceMcp, type ReferenceMcp } from './reference-mcp/server.js';
import type { EnrollmentOptions } from './reference-mcp/enroll.js';
import { enroll, type EnrollOutcome } from '../src/identity/index.js';
import { simulatedAppliance, baselineFor, type SimulatedHost, type ApplianceOptions } from './simulated-host/index.js';
import { formatPublicKey, generateKeyFiles, loadSecretKeyFile, loadPublicKeyFile, type Envelope, type SecretKey, type PublicKey } from '../src/crypto/index.js';
import { loadBaseline, parseConfig, type Config, type ConfigInput } from '../src/config/index.js';
import { openAgentRuntime, type AgentRuntime, type RuntimeOverrides } from '../src/agent/index.js';
import { silentLogger, type Logger } from '../src/common/index.js';
import { applyHealRequests, initHealTree } from '../src/heal/index.js';
import { prepareOrder, signOrder, type OrderType } from '../src/orders/index.js';

export interface Harness {
  readonly dir: string;
  readonly pki: Pki;
  readonly mcp: ReferenceMcp;
  readonly host: SimulatedHost;
  readonly config: Config;
  readonly configPath: string;
  /** The agent's evidence-signing public key, as an auditor holds it. */
  readonly agentPublicKey: PublicKey;
  readonly agentPublicKeyText: string;
  /** The MSP's offline order-signing key. */
  readonly orderKey: SecretKey;
  readonly orderKeyPath: string;
  /** An order signed with the MSP key, issued now on the appliance's clock, next sequence. */
  signOrder(type: OrderType, params: Record<string, unknown>, overrides?: Record<string, unknown>): Envelope;
  /**
   * Open the agent on this appliance (fresh runtime each call: a restart). The root healer runs
   * in-process on the simulated host where the systemd path unit would start it.
   */
  openAgent(overrides?: RuntimeOverrides): AgentRuntime;
  close(): Promise<void>;
  /** With `enrollment`: the one-time token the MSP issued, as the appliance's secret file. */
  readonly tokenFile: string | null;
  /** With `enrollment`: run `compliance-agent enroll` on the appliance. */
  enroll(): Promise<EnrollOutcome>;
}

export interface HarnessOptions {
  readonly config?: Partial<ConfigInput>;
  readonly appliance?: ApplianceOptions;
  readonly logger?: Logger;
  /**
   * Start from an appliance that has only a one-time site token and the CA file: no keys, no
   * certificate until `enroll()`. The MCP's enrollment authority keeps the appliance's clock
   * unless `now` gives it its own.
   */
  readonly enrollment?: EnrollmentOptions;
  /** The MSP signs a heartbeat order this often (simulated clock); the MCP relays it when idle. Off when absent. */
  readonly heartbeatEveryMs?: number;
}

/**
 * A complete site on one machine: a generated PKI, the reference MCP over mTLS, a simulated NixOS
 * appliance with its config, baseline and keys on disk, and the agent wired to all of it.
 */
export async function startHarness(dir: string, opts: HarnessOptions = {}): Promise<Harness> {
  mkdirSync(dir, { recursive: true });
  const pki = await generatePki(join(dir, 'pki'), { clientCn: 'appliance-1', serverNames: ['localhost', '127.0.0.1'] });
  const orderKeys = generateKeyFiles('msp-orders-2026', join(dir, 'msp-keys'));
  const host = simulatedAppliance({ root: join(dir, 'appliance-root'), ...opts.appliance });
  const enrolling = opts.enrollment !== undefined;
  // Enrolling: the keys are made on the appliance by `enroll`; otherwise by hand, as before.
  const agentKeys = enrolling ? null : generateKeyFiles('appliance-1', join(dir, 'agent-keys'));
  const identityDir = join(dir, 'identity');
  // The MSP's side signs heartbeats (set below, once the order signer exists); the MCP only relays them.
  let signHeartbeat: () => Envelope = () => {
    throw new Error('heartbeat signer not ready');
  };
  const mcp = await startReferenceMcp({
    pki,
    agentKeys: agentKeys ? [loadPublicKeyFile(agentKeys.publicPath)] : [],
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(enrolling ? { enrollment: { now: () => host.now(), ...opts.enrollment } } : {}),
    ...(opts.heartbeatEveryMs ? { heartbeat: { sign: () => signHeartbeat(), everyMs: opts.heartbeatEveryMs, now: () => host.now() } } : {}),
  });
  let tokenFile: string | null = null;
  const machineIdFile = join(dir, 'machine-id');
  if (enrolling) {
    writeFileSync(machineIdFile, `${randomBytes(16).toString('hex')}\n`);
    mkdirSync(join(dir, 'secrets'), { recursive: true, mode: 0o700 });
    tokenFile = join(dir, 'secrets', 'enrollment-token');
    writeFileSync(tokenFile, `${mcp.enrollment!.issueToken('clinic-001')}\n`, { mode: 0o600 });
  }
  const baselinePath = join(dir, 'baseline.json');
  writeFileSync(baselinePath, JSON.stringify(baselineFor(host), null, 2));
  const raw: ConfigInput = {
    mcpUrl: mcp.url,
    allowedHosts: [new URL(mcp.url).hostname],
    siteId: 'clinic-001',
    hostId: 'appliance-1',
    deploymentMode: 'direct',
    baselinePath,
    ...(agentKeys
      ? { clientCertFile: pki.clientCert, clientKeyFile: pki.clientKey, signingKeyFile: agentKeys.secretPath }
      : {
          clientCertFile: join(identityDir, 'client-cert.pem'),
          clientKeyFile: join(identityDir, 'client-key.pem'),
          signingKeyFile: join(identityDir, 'evidence-signing.key'),
          machineIdFile,
        }),
    caFile: pki.caCert,
    trustedOrderKeys: [orderKeys.publicKey],
    mcpReceiptKeys: [mcp.receiptKeyText],
    stateDir: join(dir, 'state'),
    healDir: join(dir, 'heal'),
    ...opts.config,
  };
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(raw, null, 2));
  const config = parseConfig(raw, configPath);
  // The healer's tree, as the module's tmpfiles rules and init unit make it. Here the agent and
  // the healer are one user (this process), so the drop box belongs to that user's group.
  const agent = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  initHealTree(config.healDir, agent, host.now());
  const runtimes: AgentRuntime[] = [];
  const orderKey = loadSecretKeyFile(orderKeys.secretPath);
  let sequence = 1;
  const healer = () =>
    applyHealRequests({
      host,
      config,
      agent,
      baseline: loadBaseline(baselinePath),
      // The health check's waits move the simulated clock instead of sleeping.
      sleep: (ms) => {
        host.advance(ms);
        return Promise.resolve();
      },
    }).then(() => undefined);
  const harness: Harness = {
    dir,
    pki,
    mcp,
    host,
    config,
    configPath,
    // The current key: after a rotation, the new one.
    get agentPublicKey() {
      const k = loadSecretKeyFile(config.signingKeyFile);
      return { keyId: k.keyId, publicKey: k.publicKey };
    },
    get agentPublicKeyText() {
      const k = loadSecretKeyFile(config.signingKeyFile);
      return formatPublicKey(k.keyId, k.publicKey);
    },
    tokenFile,
    enroll() {
      if (!tokenFile) throw new Error('startHarness: enroll() needs the enrollment option');
      return enroll({ config, tokenFile });
    },
    orderKey,
    orderKeyPath: orderKeys.secretPath,
    signOrder(type, params, overrides = {}) {
      const order = prepareOrder(
        { site_id: config.siteId, host_id: config.hostId, sequence: sequence++, policy_version: config.policyVersion, type, params, ...overrides },
        { now: host.now(), ttlS: config.orderTtl },
      );
      return signOrder(order, orderKey);
    },
    openAgent(overrides = {}) {
      const rt = openAgentRuntime(config, { host, logger: opts.logger ?? silentLogger, ...overrides, extra: { runHealer: healer, ...overrides.extra } });
      runtimes.push(rt);
      return rt;
    },
    async close() {
      for (const rt of runtimes) await rt.close();
      await mcp.stop();
      host.dispose();
    },
  };
  signHeartbeat = () => harness.signOrder('heartbeat', {});
  return harness;
}
