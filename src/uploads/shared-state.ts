import path from 'node:path';
import type { Backend } from '../backends/backend.ts';
import { PostgresBackend } from '../backends/postgres.ts';
import { RedisBackend } from '../backends/redis.ts';
import type { Config } from '../config/load.ts';
import { PostgresOutboxStore } from '../hooks/delivery/outbox-postgres-store.ts';
import { RedisOutboxStore } from '../hooks/delivery/outbox-redis-store.ts';
import type { OutboxStore } from '../hooks/delivery/outbox-store.ts';
import type { RunHistory } from '../hooks/history/run-history.ts';
import { FileRunHistory } from '../hooks/history/run-history-file.ts';
import { PostgresRunHistory } from '../hooks/history/run-history-postgres.ts';
import { RedisRunHistory } from '../hooks/history/run-history-redis.ts';
import { FileInfoStore } from '../info/file.ts';
import type { InfoStore } from '../info/info-store.ts';
import { FileNamedHooksStore } from '../info/named-hooks-file.ts';
import { PostgresNamedHooksStore } from '../info/named-hooks-postgres.ts';
import { RedisNamedHooksStore } from '../info/named-hooks-redis.ts';
import type { NamedHooksStore } from '../info/named-hooks-store.ts';
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
  /** The hooks outbox on the same shared backend; undefined for file-info-storage (the local journal). */
  readonly outboxStore: OutboxStore | undefined;
  /** The named hooks and bindings added through the admin API, beside the records. */
  readonly namedHooksStore: NamedHooksStore;
}

/** Upload records a lone file-info-storage process keeps in memory (a few hundred bytes each). */
const fileRecordCache = 10_000;

/** How a PostgreSQL lock waiter retries when no released notification arrives (holder died). */
const postgresLockRetryMs = 500;

/** An instance that has not renewed its outbox claim for this long is taken for dead; others deliver its events. */
const outboxLeaseMs = 10_000;

/**
 * Whether this process alone writes and removes the upload files and their records: one process (no
 * --workers) keeping records in files. Only then may it keep files open between requests or trust its memory
 * of a record: otherwise another process may rewrite a record, or remove a file whose disk space a handle
 * kept here would hold.
 */
export function ownsFilesAlone(config: Pick<Config, 'workers' | 'infoStorage'>): boolean {
  return config.workers <= 1 && config.infoStorage === 'file-info-storage';
}

/** The info store from --info-storage; a shared one brings its distributed locker and its backend. */
export function composeUploadState(config: Config): UploadState {
  switch (config.infoStorage) {
    case 'file-info-storage':
      return {
        infoStore: new FileInfoStore(config.infoDir, {
          fsync: config.forceFsync,
          cachedRecords: ownsFilesAlone(config) ? fileRecordCache : 0,
        }),
        locker: undefined,
        backends: [],
        outboxStore: undefined,
        namedHooksStore: new FileNamedHooksStore(config.infoDir, { shared: !ownsFilesAlone(config) }),
      };
    case 'redis-info-storage': {
      const backend = new RedisBackend(config.infoDbDsn ?? '', {
        keyPrefix: config.redisKeyPrefix,
        timeoutMs: config.backendTimeoutMs,
      });
      return {
        infoStore: new RedisInfoStore(backend, { expirationSeconds: config.redisInfoExpirationSeconds }),
        locker: new RedisLocker(backend, { ttlMs: config.lockTtlMs }),
        backends: [backend],
        outboxStore: new RedisOutboxStore(backend, { leaseMs: outboxLeaseMs }),
        namedHooksStore: new RedisNamedHooksStore(backend),
      };
    }
    case 'db-info-storage': {
      const backend = new PostgresBackend(config.infoDbDsn ?? '', {
        ...(config.postgresSchema !== undefined ? { schema: config.postgresSchema } : {}),
        timeoutMs: config.backendTimeoutMs,
      });
      return {
        infoStore: new PostgresInfoStore(backend),
        locker: new PostgresLocker(backend, { retryMs: postgresLockRetryMs }),
        backends: [backend],
        outboxStore: new PostgresOutboxStore(backend, { leaseMs: outboxLeaseMs }),
        namedHooksStore: new PostgresNamedHooksStore(backend),
      };
    }
  }
}

/**
 * The hook run history on the same storage as the upload records: files under `<info-dir>/.wharf-history`
 * (one folder per worker process), or the shared Redis or PostgreSQL.
 */
export function composeRunHistory(
  config: Config,
  state: UploadState,
  onError: (error: unknown, dropped: number) => void,
): RunHistory {
  const settings = {
    limit: config.admin.historyLimit,
    maxAgeMs: config.admin.historyMaxAgeMs,
    onError,
  };
  const backend = state.backends[0];
  if (backend instanceof RedisBackend) return new RedisRunHistory(backend, settings);
  if (backend instanceof PostgresBackend) return new PostgresRunHistory(backend, settings);
  const slot = config.env.WHARF_WORKER_SLOT;
  const base = path.join(config.infoDir, '.wharf-history');
  return new FileRunHistory(
    slot !== undefined && /^\d+$/.test(slot) ? path.join(base, `worker-${slot}`) : base,
    settings,
  );
}
