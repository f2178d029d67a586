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
  {
    key: 'backendTimeout',
    flag: 'backend-timeout',
    env: ['WHARF_BACKEND_TIMEOUT'],
    kind: 'integer',
    min: 1,
    default: '5',
    help: 'Seconds one Redis command or PostgreSQL query (or connecting to either) may take before it fails. A request that meets a stopped or hung shared backend answers 503 with Retry-After (423 to HEAD, so tus clients wait and resume instead of starting over) and logs a warning naming the backend.',
    group: limits,
  },
  {
    key: 'redisKeyPrefix',
    flag: 'redis-key-prefix',
    env: ['WHARF_REDIS_KEY_PREFIX'],
    kind: 'string',
    default: 'wharf:',
    help: 'Prefix of every Redis key Wharf writes (records, locks, hook outbox, run history), so several deployments can share one Redis database.',
    group: storage,
  },
  {
    key: 'postgresSchema',
    flag: 'postgres-schema',
    env: ['WHARF_POSTGRES_SCHEMA'],
    kind: 'string',
    help: "PostgreSQL schema that holds every Wharf table (created if missing), so several deployments can share one database: lower-case letters, digits and _, at most 50. Unset: the connection's default search path (normally public).",
    group: storage,
  },
];
