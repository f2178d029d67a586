import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Client } from 'pg';
import { createUpload, octets, send, tus as tusHeaders } from '../support/http.ts';
import { postgresUrl, redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** A post-create HTTP hook to a port nothing listens on: its event stays in the outbox, retried. */
const hookArgs = [
  '--hooks',
  'post-create',
  '--hooks-http-urls',
  'http://127.0.0.1:9/hook',
  '--admin',
  '--shutdown-timeout',
  '1',
];

async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let waited = 0; waited < 10_000; waited += 50) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`never happened: ${what}`);
}

/** A PATCH that sends 5 of its 10 bytes and waits (holding the upload's lock) until `finish` is called. */
function heldPatch(url: string): { readonly finish: () => Promise<number> } {
  const req = httpRequest(url, {
    method: 'PATCH',
    headers: { ...tusHeaders, ...octets, 'Upload-Offset': 0, 'Content-Length': 10 },
    agent: false,
  });
  const status = new Promise<number>((resolve, reject) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
  });
  req.write(Buffer.from('01234'));
  return {
    finish: async () => {
      req.end(Buffer.from('56789'));
      return status;
    },
  };
}

describe('two deployments on one Redis, each under its own --redis-key-prefix', () => {
  const prefixes = [`test-share-a-${randomUUID()}:`, `test-share-b-${randomUUID()}:`] as const;
  let instances: WharfProcess[] = [];
  let client: Redis;
  let dataDir: string;

  before(async () => {
    const { Redis: RedisClient } = await import('ioredis');
    client = new RedisClient(redisUrl);
    // One data folder for both, so only the prefix keeps them apart.
    dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-share-'));
    instances = await Promise.all(
      prefixes.map((prefix) =>
        startWharf({
          dataDir,
          args: [
            '--info-storage',
            'redis-info-storage',
            '--info-db-dsn',
            redisUrl,
            '--redis-key-prefix',
            prefix,
            ...hookArgs,
          ],
        }),
      ),
    );
  });
  after(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    for (const prefix of prefixes) {
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
    }
    client.disconnect();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('each sees only its own uploads, and every key it writes (record, lock, outbox, run history) carries its prefix', async () => {
    const [a, b] = instances as [WharfProcess, WharfProcess];
    const urlA = await createUpload(a.endpoint, { 'Upload-Length': 10 });
    const urlB = await createUpload(b.endpoint, { 'Upload-Length': 10 });
    const idA = new URL(urlA).pathname.split('/').pop() ?? '';
    const idB = new URL(urlB).pathname.split('/').pop() ?? '';
    assert.equal((await send('HEAD', urlA, { headers: tusHeaders })).status, 200);
    assert.equal((await send('HEAD', `${b.endpoint}${idA}`, { headers: tusHeaders })).status, 404);
    assert.equal((await send('HEAD', `${a.endpoint}${idB}`, { headers: tusHeaders })).status, 404);

    const held = heldPatch(urlA);
    const lockKey = await eventually(
      async () => (await client.keys(`*lock:${idA}`))[0],
      'the lock of the PATCH in progress',
    );
    assert.equal(lockKey, `${prefixes[0]}lock:${idA}`);
    assert.equal(await held.finish(), 204);

    const [prefixA, prefixB] = prefixes;
    const keysA = await eventually(async () => {
      const keys = await client.keys(`${prefixA}*`);
      const kinds = ['info:', 'outbox:', 'history:'];
      return kinds.every((kind) => keys.some((key) => key.startsWith(`${prefixA}${kind}`)))
        ? keys
        : undefined;
    }, 'a record, an outbox entry and a run history under the prefix');
    assert.ok(keysA.includes(`${prefixA}info:${idA}`), keysA.join('\n'));
    assert.ok(!keysA.includes(`${prefixA}info:${idB}`));
    assert.ok((await client.keys(`${prefixB}*`)).includes(`${prefixB}info:${idB}`));
    // Nothing of A's upload anywhere else (the default prefix included).
    const anywhere = await client.keys(`*${idA}*`);
    assert.ok(anywhere.length > 0);
    assert.deepEqual(
      anywhere.filter((key) => !key.startsWith(prefixA)),
      [],
    );
  });
});

describe('two deployments on one PostgreSQL database, each in its own --postgres-schema', () => {
  const schemas = [
    `test_share_a_${randomBytes(5).toString('hex')}`,
    `test_share_b_${randomBytes(5).toString('hex')}`,
  ] as const;
  let instances: WharfProcess[] = [];
  let client: Client;
  let dataDir: string;

  before(async () => {
    const pg = await import('pg');
    client = new pg.default.Client({ connectionString: postgresUrl });
    await client.connect();
    dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-share-'));
    instances = await Promise.all(
      schemas.map((schema) =>
        startWharf({
          dataDir,
          args: [
            '--info-storage',
            'db-info-storage',
            '--info-db-dsn',
            postgresUrl,
            '--postgres-schema',
            schema,
            ...hookArgs,
          ],
        }),
      ),
    );
  });
  after(async () => {
    await Promise.all(instances.map((instance) => instance.stop()));
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('each sees only its own uploads, and every Wharf table lives in its schema, created at start', async () => {
    const [a, b] = instances as [WharfProcess, WharfProcess];
    const urlA = await createUpload(a.endpoint, { 'Upload-Length': 10 });
    const idA = new URL(urlA).pathname.split('/').pop() ?? '';
    assert.equal((await send('HEAD', urlA, { headers: tusHeaders })).status, 200);
    assert.equal((await send('HEAD', `${b.endpoint}${idA}`, { headers: tusHeaders })).status, 404);
    const patch = await send('PATCH', urlA, {
      headers: { ...tusHeaders, ...octets, 'Upload-Offset': 0 },
      body: '0123456789',
    });
    assert.equal(patch.status, 204);

    const { rows } = await client.query<{ table_schema: string; table_name: string }>(
      'SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = ANY($1) ORDER BY 1, 2',
      [[...schemas]],
    );
    const expected = [
      'wharf_hook_dead_letters',
      'wharf_hook_events',
      'wharf_hook_outbox',
      'wharf_hook_runs',
      'wharf_schema_migrations',
      'wharf_uploads',
    ];
    for (const schema of schemas) {
      const tables = rows.filter((row) => row.table_schema === schema).map((row) => row.table_name);
      for (const table of expected) assert.ok(tables.includes(table), `${schema}: ${tables.join(', ')}`);
    }
    const [schemaA, schemaB] = schemas;
    const inA = await client.query(`SELECT record FROM "${schemaA}".wharf_uploads WHERE id = $1`, [idA]);
    const inB = await client.query(`SELECT record FROM "${schemaB}".wharf_uploads WHERE id = $1`, [idA]);
    assert.equal(inA.rowCount, 1);
    assert.equal(inB.rowCount, 0);
    const elsewhere = await client.query<{ table_schema: string }>(
      `SELECT table_schema FROM information_schema.tables WHERE table_name = 'wharf_uploads' AND table_schema <> ALL($1)`,
      [[...schemas]],
    );
    for (const { table_schema: other } of elsewhere.rows) {
      // Other test files create and drop schemas of their own meanwhile: one dropped since the listing above
      // (undefined_table, 42P01) holds nothing.
      const found = await client
        .query(`SELECT 1 FROM "${other}".wharf_uploads WHERE id = $1`, [idA])
        .catch((error: unknown) => {
          if ((error as { code?: string }).code === '42P01') return { rowCount: 0 };
          throw error;
        });
      assert.equal(found.rowCount, 0, `the record leaked into schema ${other}`);
    }
    // The hook event of A's upload went to A's outbox (its target never answers, so it stays there).
    await eventually(async () => {
      const outbox = await client.query(
        `SELECT 1 FROM "${schemaA}".wharf_hook_outbox UNION ALL SELECT 1 FROM "${schemaA}".wharf_hook_dead_letters`,
      );
      return (outbox.rowCount ?? 0) > 0 ? true : undefined;
    }, 'an outbox entry in the schema');
  });
});
