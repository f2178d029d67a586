import type Pino from 'pino';
import type { LogLevel } from './config/load.ts';
import { requirePackage } from './require-package.ts';

/**
 * Required rather than imported: imported from ESM, this CommonJS package measured about 20 ms more CPU on Node 22,
 * at every start (docs/architecture.md, "Start cost").
 */
const pino = requirePackage('pino') as typeof Pino;

export type Logger = Pino.Logger;

/** JSON lines on stdout; credentials are redacted wherever they appear in a logged request or config. */
export function createLogger(level: LogLevel, destination?: Pino.DestinationStream): Logger {
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
