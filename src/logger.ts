import pino from 'pino';
import type { LogLevel } from './config/load.ts';

export type Logger = pino.Logger;

/** JSON lines on stdout; credentials are redacted wherever they appear in a logged request or config. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: [
          'headers.authorization',
          'headers.cookie',
          'headers["proxy-authorization"]',
          '*.headers.authorization',
          '*.headers.cookie',
          // Webhook signing secrets, should a config object or a hook declaration ever be logged.
          'secrets',
          '*.secrets',
          'httpSecrets',
          '*.httpSecrets',
          '*.*.httpSecrets',
        ],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
