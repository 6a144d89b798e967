export { AgentError, describeError } from './errors.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './logger.js';
export { writeFileAtomic } from './atomic-write.js';
export { ensureDir } from './ensure-dir.js';
export { AGENT_VERSION } from './version.js';
export { parseJsonText } from './json.js';
export { isoSeconds } from './time.js';
export { oneLine, clip, firstLine } from './text.js';
export { errnoCode } from './errno.js';
