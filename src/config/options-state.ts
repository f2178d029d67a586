import type { OptionSpec } from './option-table.ts';

const storage = 'Storage';
const limits = 'Limits and timeouts';

/** Shared state for several instances: where records live besides files, and how long shared locks last. */
export const stateOptions: readonly OptionSpec[] = [
  {
    key: 'infoDbDsn',
    flag: 'info-db-dsn',
    env: ['WHARF_INFO_DB_DSN', 'RUSTUS_INFO_DB_DSN'],
    kind: 'string',
    help: 'Connection URL of the shared info storage: redis://[:password@]host:port/db (redis-info-storage) or postgres://user:password@host:port/database (db-info-storage). The password is never logged.',
    group: storage,
  },
  {
    key: 'redisInfoExpiration',
    flag: 'redis-info-expiration',
    env: ['WHARF_REDIS_INFO_EXPIRATION', 'RUSTUS_REDIS_INFO_EXPIRATION'],
    kind: 'integer',
    min: 0,
    default: '0',
    help: 'Seconds a redis-info-storage record lives after its last write (the TTL slides on every write, as in rustus); 0 = forever.',
    group: storage,
  },
  {
    key: 'lockTtl',
    flag: 'lock-ttl',
    env: ['WHARF_LOCK_TTL'],
    kind: 'integer',
    min: 1,
    default: '10',
    help: 'Seconds a Redis upload lock lives unless its holder renews it (every third of this): how long the uploads of an instance that died stay locked. PostgreSQL locks end with the instance at once. Also how long the lease of a running expiration sweep or module schedule outlives a dead instance (Redis and PostgreSQL), before another instance takes the job.',
    group: limits,
  },
];
