/**
 * Addresses of the real services the tests use, started by scripts/services/*.sh. Override them with
 * WHARF_TEST_REDIS_URL / WHARF_TEST_POSTGRES_URL to test against other servers.
 */
export const redisUrl = process.env.WHARF_TEST_REDIS_URL ?? 'redis://127.0.0.1:16379/0';
export const postgresUrl =
  process.env.WHARF_TEST_POSTGRES_URL ?? 'postgres://wharf:wharf@127.0.0.1:15432/wharf_test';

/** Drops a PostgreSQL schema a test gave Wharf (`--postgres-schema`), with everything in it. */
export async function dropPostgresSchema(schema: string): Promise<void> {
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Deletes the Redis keys a test gave Wharf (`--redis-key-prefix`). */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(redisUrl);
  try {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
  } finally {
    client.disconnect();
  }
}
