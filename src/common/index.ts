export { AgentError, ok, err, describeError, type Result } from './errors.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './logger.js';
export { writeFileAtomic } from './atomic-write.js';
export { AGENT_VERSION } from './version.js';
export { parseJsonText } from './json.js';
export { isoSeconds } from './time.js';
export { oneLine } from './one-line.js';
export { errorChain, UNTRUSTED_CERT_CODES, DNS_FAILURE_CODES, UNREACHABLE_CODES, type ChainedError } from './transport-errors.js';
export { Agent as HttpAgent } from './http-agent.js';
