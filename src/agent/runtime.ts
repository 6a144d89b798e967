import { assertSinkFiles, loadBaseline, type Config } from '../config/index.js';
import { createSinks } from '../outputs/index.js';
import { loadSecretKeyFile, parsePublicKey, type PublicKey } from '../crypto/index.js';
import { RealHost, type Host } from '../host/index.js';
import { McpClient, type McpClientOptions } from '../mcp/index.js';
import { openStateDb, stateLayout, type StateDb } from '../state/index.js';
import { createLogger, type Logger } from '../common/index.js';
import { Healing, Spool } from '../heal/index.js';
import { existsSync } from 'node:fs';
import { IdentityLifecycle, identityPaths, settleRenewal, settleRotation } from '../identity/index.js';
import { Agent, type AgentDeps, type McpPort } from './agent.js';
import { previousExitAlerts } from './previous-exit.js';
import { swappable } from './swappable.js';

export interface RuntimeOverrides {
  readonly host?: Host;
  readonly logger?: Logger;
  readonly mcp?: McpPort & { close?: () => Promise<void> };
  readonly extra?: Partial<Pick<AgentDeps, 'sinks' | 'runHealer' | 'metricsPath' | 'flushBudgetMs' | 'flushMaxItems'>>;
}

export interface AgentRuntime {
  readonly agent: Agent;
  readonly logger: Logger;
  close(): Promise<void>;
}

/**
 * Wire the stages from a validated config: keys and baseline are read once at start (a bad file
 * stops the agent before it touches the network), the state database is opened and migrated.
 */
export function openAgentRuntime(config: Config, overrides: RuntimeOverrides = {}): AgentRuntime {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  if (!overrides.extra?.sinks) assertSinkFiles(config);
  const baseline = loadBaseline(config.baselinePath);
  const db = openStateDb(stateLayout(config.stateDir).db);
  let wired;
  try {
    wired = wireIdentity(config, db, logger, overrides.mcp);
  } catch (e) {
    db.close();
    throw e;
  }
  const { signingKey, mcp, identity } = wired;
  const sinks = overrides.extra?.sinks ? null : createSinks(config, logger);
  const startAlerts = previousExitAlerts(config, logger);
  const agent = new Agent({
    config,
    baseline,
    host: overrides.host ?? new RealHost(),
    db,
    signingKey,
    mcp,
    logger,
    ...(sinks ? { sinks: sinks.deliver } : {}),
    healing: new Healing({ baseline, db, spool: new Spool(config.healDir), logger }),
    metricsPath: config.metricsFile ?? stateLayout(config.stateDir).metrics,
    ...(startAlerts ? { startAlerts } : {}),
    ...(identity ? { identity } : {}),
    ...overrides.extra,
  });
  let closed = false;
  return {
    agent,
    logger,
    async close() {
      if (closed) return;
      closed = true;
      await mcp.close?.();
      await sinks?.close();
      db.close();
    },
  };
}

/**
 * Keys and the MCP client. An enrolled appliance manages its own identity: what a crash
 * interrupted (a renewal, a key rotation) is settled before its files are read, and its MCP
 * client can be swapped for one over a renewed certificate.
 */
function wireIdentity(config: Config, db: StateDb, logger: Logger, override: RuntimeOverrides['mcp']) {
  const paths = identityPaths(config);
  const enrolled = existsSync(paths.record);
  if (enrolled) {
    settleRenewal(paths);
    settleRotation(paths, db);
  }
  const signingKey = loadSecretKeyFile(config.signingKeyFile);
  const makeMcp = () => McpClient.create(mcpClientOptions(config));
  const client = override ? null : swappable(makeMcp());
  const mcp: McpPort & { close?: () => Promise<void> } = override ?? client!.proxy;
  const identity =
    enrolled && client
      ? new IdentityLifecycle(config, db, {
          logger,
          // The renewed pair is used from the next request on; the old pool finishes and closes.
          reloadMcp: () => client.swap(makeMcp()).close(),
        })
      : undefined;
  return { signingKey, mcp, identity };
}

/** The MCP client's options from the config: the one place they are read. */
export function mcpClientOptions(config: Config): McpClientOptions {
  return {
    mcpUrl: config.mcpUrl,
    caFile: config.caFile,
    clientCertFile: config.clientCertFile,
    clientKeyFile: config.clientKeyFile,
    siteId: config.siteId,
    hostId: config.hostId,
    receiptKeys: receiptKeysFromConfig(config),
  };
}

/** config.mcpReceiptKeys as keys: the MCP countersigns each receipt with one of them. */
export function receiptKeysFromConfig(config: Pick<Config, 'mcpReceiptKeys'>): PublicKey[] {
  return config.mcpReceiptKeys.map((k, i) => parsePublicKey(k, `mcpReceiptKeys.${i}`));
}
