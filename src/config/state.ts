import { ConfigError, type RawOptions } from './option-table.ts';

export type InfoStorageName = 'file-info-storage' | 'redis-info-storage' | 'db-info-storage';

const schemes: Readonly<Record<Exclude<InfoStorageName, 'file-info-storage'>, readonly string[]>> = {
  'redis-info-storage': ['redis:', 'rediss:'],
  'db-info-storage': ['postgres:', 'postgresql:'],
};

/** --postgres-schema, checked: a plain identifier, so it is safe in SQL and needs no quoting rules. */
function postgresSchemaOf(options: RawOptions): string | undefined {
  const schema = options.postgresSchema;
  if (typeof schema !== 'string' || schema === '') return undefined;
  if (!/^[a-z_][a-z0-9_]{0,49}$/.test(schema)) {
    throw new ConfigError(
      `--postgres-schema ${JSON.stringify(schema)}: use lower-case letters, digits and _ (at most 50, not starting with a digit)`,
    );
  }
  return schema;
}

/** The info storage and its DSN, checked together: a shared storage needs a URL of its own kind. */
export function sharedStateConfig(options: RawOptions): {
  readonly infoStorage: InfoStorageName;
  readonly infoDbDsn: string | undefined;
  readonly redisInfoExpirationSeconds: number;
  readonly lockTtlMs: number;
  readonly backendTimeoutMs: number;
  readonly redisKeyPrefix: string;
  readonly postgresSchema: string | undefined;
} {
  const infoStorage = (options.infoStorage ?? 'file-info-storage') as InfoStorageName;
  const dsn =
    typeof options.infoDbDsn === 'string' && options.infoDbDsn !== '' ? options.infoDbDsn : undefined;
  if (infoStorage !== 'file-info-storage') {
    if (dsn === undefined) throw new ConfigError(`--info-storage ${infoStorage} needs --info-db-dsn`);
    let protocol: string;
    try {
      protocol = new URL(dsn).protocol;
    } catch {
      throw new ConfigError('--info-db-dsn: not a URL');
    }
    const accepted = schemes[infoStorage];
    if (!accepted.includes(protocol)) {
      // The DSN itself is not echoed: it may hold a password.
      throw new ConfigError(
        `--info-db-dsn: ${infoStorage} needs a ${accepted.map((scheme) => `${scheme}//`).join(' or ')} URL, got ${protocol}//`,
      );
    }
  }
  return {
    infoStorage,
    infoDbDsn: dsn,
    redisInfoExpirationSeconds:
      typeof options.redisInfoExpiration === 'number' ? options.redisInfoExpiration : 0,
    lockTtlMs: (typeof options.lockTtl === 'number' ? options.lockTtl : 10) * 1000,
    backendTimeoutMs: (typeof options.backendTimeout === 'number' ? options.backendTimeout : 5) * 1000,
    redisKeyPrefix: typeof options.redisKeyPrefix === 'string' ? options.redisKeyPrefix : 'wharf:',
    postgresSchema: postgresSchemaOf(options),
  };
}
