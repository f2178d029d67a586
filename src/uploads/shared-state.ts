import type { Backend } from '../backends/backend.ts';
import { PostgresBackend } from '../backends/postgres.ts';
import { RedisBackend } from '../backends/redis.ts';
import type { Config } from '../config/load.ts';
import { FileInfoStore } from '../info/file.ts';
import type { InfoStore } from '../info/info-store.ts';
import { PostgresInfoStore } from '../info/postgres.ts';
import { RedisInfoStore } from '../info/redis.ts';
import type { Locker } from '../locks/locker.ts';
import { PostgresLocker } from '../locks/postgres.ts';
import { RedisLocker } from '../locks/redis.ts';

export interface UploadState {
  readonly infoStore: InfoStore;
  /** The shared lock that comes with a shared info storage; undefined for file-info-storage. */
  readonly locker: Locker | undefined;
  readonly backends: readonly Backend[];
}

/** How a PostgreSQL lock waiter retries when no released notification arrives (holder died). */
const postgresLockRetryMs = 500;

/** The info store from --info-storage; a shared one brings its distributed locker and its backend. */
export function composeUploadState(config: Config): UploadState {
  switch (config.infoStorage) {
    case 'file-info-storage':
      return {
        infoStore: new FileInfoStore(config.infoDir, { fsync: config.forceFsync }),
        locker: undefined,
        backends: [],
      };
    case 'redis-info-storage': {
      const backend = new RedisBackend(config.infoDbDsn ?? '');
      return {
        infoStore: new RedisInfoStore(backend, { expirationSeconds: config.redisInfoExpirationSeconds }),
        locker: new RedisLocker(backend, { ttlMs: config.lockTtlMs }),
        backends: [backend],
      };
    }
    case 'db-info-storage': {
      const backend = new PostgresBackend(config.infoDbDsn ?? '');
      return {
        infoStore: new PostgresInfoStore(backend),
        locker: new PostgresLocker(backend, { retryMs: postgresLockRetryMs }),
        backends: [backend],
      };
    }
  }
}
