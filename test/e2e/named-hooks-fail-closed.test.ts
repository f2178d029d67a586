import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BackendProxy, startBackendProxy } from '../support/backend-proxy.ts';
import { eventually } from '../support/eventually.ts';
import { type Reply, send, tus } from '../support/http.ts';
import { linesOf } from '../support/lines-file.ts';
import { dropPostgresSchema, postgresUrl, redisUrl } from '../support/services.ts';
import { logsWith, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const token = 'fail-closed-admin-token';
/** The store's answer to this is what the stored named hooks' file holds (info folder, file info storage). */
const storedFile = '.wharf-named-hooks.json';

/**
 * The config file: `quota`, a pre-create hook that authorises uploads of 5 bytes at most and logs each run to
 * ran.log. No binding here: it is bound to /files through the admin API, so only the stored document applies it.
 */
const config = `hooks:
  quota:
    transport: file
    shell: true
    cwd: .
    command: 'echo "quota $WHARF_UPLOAD_LENGTH" >> ran.log; [ "$WHARF_UPLOAD_LENGTH" -le 5 ] || { echo "over the quota" >&2; exit 1; }'
endpoints:
  - path: /files
`;

function create(wharf: WharfProcess, length: number): Promise<Reply> {
  return send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': length } });
}

function ranLog(scratch: string): Promise<string[]> {
  return linesOf(path.join(scratch, 'ran.log'));
}

interface Storage {
  readonly name: string;
  /** Wharf's arguments for this storage (a place of its own). */
  args(): string[];
  /** Makes the stored named hooks unreadable for the next instance; resolves a function that undoes it. */
  breakStore(wharfDataDir: string): Promise<() => Promise<void>>;
  /** The cause the warning names while the store is broken. */
  readonly cause: RegExp;
  cleanUp(): Promise<void>;
}

/**
 * The file info storage (a lone process: nothing re-reads the file per request): the stored document
 * replaced by the first half of it, as a disk that filled up or a copy cut short leaves it.
 */
function fileStorage(): Storage {
  return {
    name: 'file info storage, the stored document unreadable (cut short)',
    args: () => [],
    breakStore: async (dataDir) => {
      const file = path.join(dataDir, storedFile);
      const whole = await readFile(file, 'utf8');
      await writeFile(file, whole.slice(0, Math.floor(whole.length / 2)));
      return () => writeFile(file, whole);
    },
    cause: /JSON/,
    cleanUp: async () => undefined,
  };
}

/**
 * PostgreSQL behind a proxy that closes every connection asking for the named hooks (`FROM wharf_named_hooks`):
 * the store unreachable for that read while the rest (the records, so Wharf starts) is served.
 */
function postgresStorage(proxy: () => BackendProxy): Storage {
  const schema = `test_fail_closed_${randomBytes(6).toString('hex')}`;
  return {
    name: 'PostgreSQL, unreachable for the named hooks read',
    args: () => {
      const dsn = new URL(postgresUrl);
      dsn.port = String(proxy().port);
      return [
        '--info-storage',
        'db-info-storage',
        '--info-db-dsn',
        dsn.toString(),
        '--postgres-schema',
        schema,
      ];
    },
    breakStore: async () => {
      proxy().dropOn('FROM wharf_named_hooks');
      return async () => proxy().restore();
    },
    cause: /postgres|Connection terminated/i,
    cleanUp: () => dropPostgresSchema(schema),
  };
}

/**
 * Redis, the named hooks hash put aside and a string left under its name: every read of it fails (WRONGTYPE)
 * while the records are served. (Closing the connection that asks, as for PostgreSQL, would close the one
 * connection every Redis command shares.)
 */
function redisStorage(): Storage {
  const prefix = `test-fail-closed-${randomBytes(6).toString('hex')}:`;
  const key = `${prefix}named-hooks`;
  const withClient = async <T>(work: (client: import('ioredis').Redis) => Promise<T>): Promise<T> => {
    const { Redis } = await import('ioredis');
    const client = new Redis(redisUrl);
    try {
      return await work(client);
    } finally {
      client.disconnect();
    }
  };
  return {
    name: 'Redis, the named hooks hash unreadable',
    args: () => [
      '--info-storage',
      'redis-info-storage',
      '--info-db-dsn',
      redisUrl,
      '--redis-key-prefix',
      prefix,
    ],
    breakStore: async () => {
      await withClient(async (client) => {
        await client.rename(key, `${key}-aside`);
        await client.set(key, 'not a hash');
      });
      return () =>
        withClient(async (client) => {
          await client.rename(`${key}-aside`, key);
        });
    },
    cause: /WRONGTYPE/,
    cleanUp: () =>
      withClient(async (client) => {
        const keys = await client.keys(`${prefix}*`);
        if (keys.length > 0) await client.del(...keys);
      }),
  };
}

describe('named hooks stored through the admin API that cannot be loaded at start: uploads are refused, not run without them', () => {
  let postgresProxy: BackendProxy;
  before(async () => {
    postgresProxy = await startBackendProxy(Number(new URL(postgresUrl).port));
  });
  after(async () => {
    await postgresProxy.close();
  });

  for (const makeStorage of [fileStorage, () => postgresStorage(() => postgresProxy), redisStorage]) {
    const storage = makeStorage();
    it(`${storage.name}: POST answers 503 ERR_NAMED_HOOKS_UNAVAILABLE, HEAD still answers, and once the store answers the stored pre-create hook runs`, async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-fail-closed-'));
      const dataDir = path.join(scratch, 'data');
      await writeFile(path.join(scratch, 'wharf.yaml'), config);
      const args = [
        '--config',
        path.join(scratch, 'wharf.yaml'),
        '--admin',
        '--admin-token',
        token,
        ...storage.args(),
      ];
      let second: WharfProcess | undefined;
      try {
        // The first instance stores the binding; its own uploads show the hook applies. Its upload's path is
        // kept, to read it from the second.
        const first = await startWharf({ args, dataDir });
        let kept: string;
        try {
          const bound = await send('POST', `${first.origin}/admin/api/bindings`, {
            headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ endpoint: '/files', hook: 'quota', events: ['pre-create'] }),
          });
          assert.equal(bound.status, 201, bound.text);
          assert.equal((await create(first, 10)).status, 400, 'the bound hook refuses 10 bytes');
          const small = await create(first, 3);
          assert.equal(small.status, 201, small.text);
          kept = new URL(String(small.headers.location), first.origin).pathname;
        } finally {
          await first.stop();
        }

        const repair = await storage.breakStore(dataDir);
        second = await startWharf({ args, dataDir });
        const refused = await create(second, 10);
        assert.equal(refused.status, 503, refused.text);
        assert.match(refused.text, /^ERR_NAMED_HOOKS_UNAVAILABLE: /);
        assert.match(String(refused.headers['retry-after']), /^\d+$/);
        // The server listens: reading an upload runs no hook and is served.
        const head = await send('HEAD', `${second.origin}${kept}`, { headers: tus });
        assert.equal(head.status, 200);
        assert.equal(head.headers['upload-offset'], '0');
        // The admin API does not list the stored hooks as absent either.
        const listed = await send('GET', `${second.origin}/admin/api/hooks`, {
          headers: { Authorization: `Bearer ${token}` },
        });
        assert.equal(listed.status, 503, listed.text);
        for (let request = 0; request < 4; request++) assert.equal((await create(second, 3)).status, 503);
        const warnings = logsWith(second, 'could not be loaded');
        assert.equal(warnings.length, 1, JSON.stringify(warnings));
        assert.match(String(warnings[0]?.error), storage.cause);
        assert.deepEqual(logsWith(second, 'request failed'), [], 'no error logged per refused request');
        assert.deepEqual(
          (await ranLog(scratch)).filter((line) => line === 'quota 10'),
          ['quota 10'],
          'the hook ran for the first instance only',
        );

        await repair();
        // Retried in the background: the first POST not refused with 503 meets the hook.
        const after = await eventually(async () => {
          const reply = await create(second!, 10);
          return reply.status === 503 ? undefined : reply;
        }, 'a POST not refused with 503 once the store answers');
        assert.equal(after.status, 400, after.text);
        assert.match(after.text, /Hook "quota" failed/);
        assert.deepEqual(
          (await ranLog(scratch)).filter((line) => line === 'quota 10'),
          ['quota 10', 'quota 10'],
        );
        const allowed = await create(second, 3);
        assert.equal(allowed.status, 201, allowed.text);
        assert.equal(logsWith(second, 'are loaded').length, 1);
      } finally {
        await second?.stop();
        await storage.cleanUp();
        await rm(scratch, { recursive: true, force: true });
      }
    });
  }
});
