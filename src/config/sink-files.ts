import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AgentError, errnoCode } from '../common/index.js';
import type { Config } from './schema.js';

/**
 * The webhook secret file holds one Standard Webhooks secret: `whsec_` followed by the standard
 * base64 of 24 to 64 random bytes (the spec's recommended key sizes), e.g. made with
 * `echo "whsec_$(openssl rand -base64 32)"`. Surrounding whitespace and a final newline are ignored.
 */
const SECRET_FORM = /^whsec_((?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)$/;
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

function readOption(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new AgentError('config_file', `${option}: ${path}: cannot read (${errnoCode(e, 'error')})`);
  }
}

/** The HMAC key from `webhookSecretFile`. Errors name the path and what is wrong, never the content. */
export function readWebhookSecret(path: string): Buffer {
  const text = readOption('webhookSecretFile', path).toString('utf8').trim();
  const m = SECRET_FORM.exec(text);
  if (!m) {
    throw new AgentError(
      'config_file',
      `webhookSecretFile: ${path}: must contain one Standard Webhooks secret, "whsec_" followed by standard base64 (e.g. echo "whsec_$(openssl rand -base64 32)")`,
    );
  }
  const key = Buffer.from(m[1]!, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new AgentError('config_file', `webhookSecretFile: ${path}: the secret decodes to ${key.length} bytes; it must be ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES}`);
  }
  return key;
}

function readCa(option: string, path: string): Buffer {
  const pem = readOption(option, path);
  try {
    new X509Certificate(pem);
  } catch {
    throw new AgentError('config_file', `${option}: ${path}: not a PEM certificate`);
  }
  return pem;
}

/** The PEM CA bundle in `syslogCaFile` (the only trust anchor for the TLS syslog receiver). */
export function readSyslogCa(path: string): Buffer {
  return readCa('syslogCaFile', path);
}

/** The PEM CA bundle in `webhookCaFile` (then the only trust anchor for the RMM webhook). */
export function readWebhookCa(path: string): Buffer {
  return readCa('webhookCaFile', path);
}

/**
 * Load-time check of the files the reseller sinks read, one line per problem. Direct mode sends
 * nothing to the sinks, so their files are not read there.
 */
function sinkFileProblems(config: Config): string[] {
  if (config.deploymentMode !== 'reseller') return [];
  const problems: string[] = [];
  const attempt = (fn: () => unknown): void => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof AgentError)) throw e;
      problems.push(e.message);
    }
  };
  if (config.rmmWebhookUrl && config.webhookSecretFile) attempt(() => readWebhookSecret(config.webhookSecretFile!));
  if (config.syslogCaFile) attempt(() => readSyslogCa(config.syslogCaFile!));
  if (config.rmmWebhookUrl && config.webhookCaFile) attempt(() => readWebhookCa(config.webhookCaFile!));
  return problems;
}

/** For the agent at start: every unusable sink file as one config error (exit 2). */
export function assertSinkFiles(config: Config): void {
  const problems = sinkFileProblems(config);
  if (problems.length > 0) throw new AgentError('config_invalid', `${problems.length} problem(s) with the reseller sink files`, problems);
}
