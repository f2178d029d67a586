import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createTusHandler } from '../../src/index.ts';
import { azureAccount, azureContainerName, azureKey, azureUrl } from '../support/azure.ts';
import { gcsBucket, gcsUrl } from '../support/gcs.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { s3Bucket, s3Url } from '../support/s3.ts';
import { postgresUrl, redisUrl } from '../support/services.ts';

/** A TCP proxy that counts the connections open through it right now, as the service would see them. */
async function countingProxy(
  target: URL,
): Promise<{ url: string; open: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client);
    client.pipe(upstream).pipe(client);
    const end = () => {
      sockets.delete(client);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('close', end);
      socket.on('error', end);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(target);
  proxied.port = String((server.address() as AddressInfo).port);
  return {
    url: proxied.toString().replace(/\/$/, ''),
    open: () => sockets.size,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Within 2 s: less than the 5 s after which the emulators themselves close an idle connection. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 40 && !check(); attempt++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(check(), what);
}

const unique = `close${process.pid}${Date.now()}`;
const cases: { name: string; target: string; options: (url: string) => Record<string, string | boolean> }[] =
  [
    {
      name: 'Redis',
      target: redisUrl,
      options: (url) => ({ infoStorage: 'redis-info-storage', infoDbDsn: url, redisKeyPrefix: `${unique}:` }),
    },
    {
      name: 'PostgreSQL',
      target: postgresUrl,
      options: (url) => ({ infoStorage: 'db-info-storage', infoDbDsn: url, postgresSchema: unique }),
    },
    {
      name: 'S3',
      target: s3Url,
      options: (url) => ({
        storage: 's3',
        s3Url: url,
        s3Bucket,
        s3AccessKey: process.env.WHARF_TEST_S3_ACCESS_KEY ?? 'wharf-test',
        s3SecretKey: process.env.WHARF_TEST_S3_SECRET_KEY ?? 'wharf-test-secret',
        s3ForcePathStyle: true,
        dirStructure: unique,
      }),
    },
    {
      name: 'GCS',
      target: gcsUrl,
      options: (url) => ({ storage: 'gcs', gcsUrl: url, gcsBucket, gcsPrefix: `${unique}/` }),
    },
    {
      name: 'Azure',
      target: azureUrl,
      options: (url) => ({
        storage: 'azure',
        azureUrl: url,
        azureAccount,
        azureKey,
        azureContainer: azureContainerName,
        azurePrefix: `${unique}/`,
      }),
    },
  ];

describe('createTusHandler().close()', () => {
  for (const { name, target, options } of cases) {
    it(`closes the ${name} connections the handler opened`, async () => {
      const proxy = await countingProxy(new URL(target));
      const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-close-'));
      const origin = new URL(proxy.url).origin;
      const handler = createTusHandler({
        options: {
          dataDir,
          infoDir: dataDir,
          logLevel: 'error',
          ...options(origin === 'null' ? proxy.url : proxy.url),
        },
      });
      const server = createHttpServer(handler);
      try {
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/files/`;
        const url = await createUpload(endpoint, { 'Upload-Length': 11 });
        const patch = await send('PATCH', url, {
          headers: { ...tus, ...octets, 'Upload-Offset': 0 },
          body: 'hello world',
        });
        assert.equal(patch.status, 204);
        assert.equal((await send('GET', url)).text, 'hello world');
        assert.equal((await send('DELETE', url, { headers: tus })).status, 204);
        // Positive control: the handler holds connections to the service between requests.
        assert.ok(proxy.open() > 0, `no ${name} connection open before close()`);
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await handler.close();
        await eventually(
          () => proxy.open() === 0,
          `${proxy.open()} ${name} connections still open after close()`,
        );
      } finally {
        server.closeAllConnections();
        await proxy.close();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }
});
