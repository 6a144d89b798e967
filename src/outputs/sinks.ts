import { AgentError, type Logger } from '../common/index.js';
import { parseSyslogTarget, readSyslogCa, readWebhookCa, readWebhookSecret, type Config } from '../config/index.js';
import type { Deliver, Destination } from '../queue/index.js';
import { SyslogSink, type SyslogSinkOptions } from './syslog.js';
import { WebhookSink, type WebhookSinkOptions } from './webhook.js';

export type SinkDestination = Exclude<Destination, 'mcp'>;

export interface Sinks {
  /** The reseller destinations every new bundle is also queued for (empty in direct mode). */
  readonly destinations: readonly SinkDestination[];
  /** How to deliver each of them; pass as the agent's `sinks`, flushed per destination independently. */
  readonly deliver: Partial<Record<SinkDestination, Deliver>>;
  close(): Promise<void>;
}

export interface SinkOverrides {
  /** Extra webhook settings (tests: a private CA, short timeouts, a clock). */
  readonly webhook?: Partial<Omit<WebhookSinkOptions, 'url' | 'secret'>>;
  readonly syslog?: Partial<Omit<SyslogSinkOptions, 'target'>>;
}

/**
 * The reseller outputs a config asks for. Direct mode has none, whatever URLs are set (one warning
 * says so). Secret and CA files are read here, once, at start: a bad file stops the agent with a
 * message naming the path.
 */
export function createSinks(config: Config, logger: Logger, overrides: SinkOverrides = {}): Sinks {
  if (config.deploymentMode !== 'reseller') {
    const set = [config.rmmWebhookUrl && 'rmmWebhookUrl', config.syslogTarget && 'syslogTarget'].filter(Boolean);
    if (set.length > 0) logger.warn({ deploymentMode: config.deploymentMode }, `${set.join(' and ')} set but ignored: direct mode sends evidence to the MCP only`);
    return { destinations: [], deliver: {}, close: async () => undefined };
  }
  const deliver: Partial<Record<SinkDestination, Deliver>> = {};
  const closers: (() => Promise<void>)[] = [];
  // ConfigSchema is the one check of these options: in reseller mode it requires
  // webhookSecretFile with rmmWebhookUrl, a valid syslogTarget, and syslogCaFile for a tls:// one.
  if (config.rmmWebhookUrl) {
    const sink = new WebhookSink({
      ...overrides.webhook,
      url: config.rmmWebhookUrl,
      secret: readWebhookSecret(config.webhookSecretFile!),
      // Pinned to one CA when configured; Node's public roots (plus NODE_EXTRA_CA_CERTS) otherwise.
      ...(config.webhookCaFile ? { ca: readWebhookCa(config.webhookCaFile), caFile: config.webhookCaFile } : {}),
    });
    deliver.webhook = sink.deliver;
    closers.push(() => sink.close());
  }
  if (config.syslogTarget) {
    const parsed = parseSyslogTarget(config.syslogTarget);
    if (!parsed.ok) throw new AgentError('config_invalid', `syslogTarget: ${parsed.message}`);
    const tls = parsed.target.protocol === 'tls';
    const sink = new SyslogSink({
      ...overrides.syslog,
      target: parsed.target,
      ...(tls ? { ca: readSyslogCa(config.syslogCaFile!), caFile: config.syslogCaFile! } : {}),
    });
    deliver.syslog = sink.deliver;
    closers.push(async () => sink.close());
  }
  return {
    destinations: Object.keys(deliver) as SinkDestination[],
    deliver,
    close: async () => {
      await Promise.all(closers.map((c) => c()));
    },
  };
}
