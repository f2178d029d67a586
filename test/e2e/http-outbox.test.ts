import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf } from '../support/wharf-process.ts';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

interface Delivered {
  readonly key: string;
  readonly hook: string;
  readonly uploadId: string;
}

test('--hooks-http-outbox: post hooks sent while the endpoint is down arrive once it is up, in order per upload', async (t) => {
  const port = await freePort();
  const wharf = await startWharf({
    args: [
      '--hooks-http-urls',
      `http://127.0.0.1:${port}/hooks`,
      '--hooks-http-outbox',
      '--hooks',
      'post-create,post-finish',
      '--hooks-outbox-max-backoff',
      '1',
      '--shutdown-timeout',
      '1',
    ],
  });
  t.after(() => wharf.stop());

  const ids: string[] = [];
  for (let index = 0; index < 5; index++) {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'abc',
    });
    assert.equal(reply.status, 204);
    ids.push(url.replace(/\/$/, '').split('/').pop() ?? '');
  }

  // Now the endpoint comes up.
  const received: Delivered[] = [];
  let server: Server | undefined;
  const allArrived = new Promise<void>((resolve) => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { upload: { id: string } };
        received.push({
          key: String(request.headers['idempotency-key']),
          hook: String(request.headers['hook-name']),
          uploadId: payload.upload.id,
        });
        response.writeHead(204).end();
        if (new Set(received.map((delivery) => delivery.key)).size === ids.length * 2) resolve();
      });
    });
    server.listen(port, '127.0.0.1');
  });
  t.after(() => new Promise((resolve) => server?.close(resolve)));
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    allArrived,
    new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${received.length} deliveries arrived`)), 30_000);
    }),
  ]);
  clearTimeout(timer);
  for (const id of ids) {
    const hooks = received.filter((delivery) => delivery.uploadId === id).map((delivery) => delivery.hook);
    assert.deepEqual([...new Set(hooks)], ['post-create', 'post-finish'], `events of ${id} in order`);
  }
});
