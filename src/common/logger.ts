import { pino, type Logger, type DestinationStream } from 'pino';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

const pinoLevel: Record<LogLevel, string> = { DEBUG: 'debug', INFO: 'info', WARNING: 'warn', ERROR: 'error' };

/**
 * JSON logs to stdout for journald. Fields that could ever carry secret material are redacted
 * by name as a second line of defence; the first is never logging them.
 */
export function createLogger(level: LogLevel = 'INFO', destination?: DestinationStream): Logger {
  return pino(
    {
      name: 'compliance-agent',
      level: pinoLevel[level],
      base: undefined,
      redact: { paths: ['secret', 'key', 'privateKey', '*.secret', '*.privateKey', 'headers.authorization'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });
export type { Logger };
