import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTusHandler, type TusHandler } from '../../src/index.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { exchangeOnOneSocket, rawRequest, readResponse } from '../support/raw-socket.ts';
import { startWharf } from '../support/wharf-process.ts';

/**
 * What a killed process or a failed record write leaves past the recorded offset, chosen by the uploader: on
 * a kept-alive connection, a GET that sent it after its announced length would forge the next response.
 */
const forged =
  'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 25\r\n\r\n<script>alert(1)</script>';

let dataDir: string;
let tusHandler: TusHandler;
let server: Server;
let port: number;
let endpoint: string;

before(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-stored-bytes-'));
  tusHandler = createTusHandler({ options: { dataDir, infoDir: dataDir, logLevel: 'error' } });
  server = createServer(tusHandler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  endpoint = `http://127.0.0.1:${port}/files/`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await tusHandler.service.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** The absolute path of an upload's data file. */
async function dataFile(url: string): Promise<string> {
  const record = await tusHandler.service.get(url.slice(url.lastIndexOf('/') + 1));
  return tusHandler.service.dataStore.describe(record.path);
}

async function patch(url: string, offset: number, body: string, headers: Record<string, string> = {}) {
  return send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': offset, ...headers }, body });
}

/**
 * A GET then a HEAD of `url` on one kept-alive connection: the GET's answer must be exactly its announced
 * bytes, and what follows it must be the server's own answer to the HEAD, then nothing.
 */
async function getThenHead(url: string, headers: Record<string, string> = {}) {
  const pathname = new URL(url).pathname;
  const bytes = await exchangeOnOneSocket(port, [
    rawRequest('GET', pathname, headers),
    rawRequest('HEAD', pathname, {}, true),
  ]);
  const get = readResponse(bytes);
  const head = readResponse(get.rest, true);
  return { get: get.response, head: head.response, after: head.rest };
}

function assertServersOwnHead(head: ReturnType<typeof readResponse>['response'], offset: number): void {
  assert.equal(head.statusLine, 'HTTP/1.1 200 OK');
  assert.equal(head.headers['tus-resumable'], '1.0.0');
  assert.equal(head.headers['upload-offset'], String(offset));
  assert.equal(head.headers['content-type'], undefined);
}

describe('stored bytes never exceed the record', () => {
  it('a deferred-length upload finished at its offset keeps no bytes stored past it', async () => {
    const url = await createUpload(endpoint, { 'Upload-Defer-Length': 1 });
    assert.equal((await patch(url, 0, 'hello ')).status, 204);
    const file = await dataFile(url);
    // A PATCH whose record write failed (or whose process was killed) after its bytes reached the file.
    await appendFile(file, forged);
    const finish = await patch(url, 6, '', { 'Upload-Length': '6' });
    assert.equal(finish.status, 204);
    assert.equal(finish.headers['upload-offset'], '6');
    assert.equal((await stat(file)).size, 6);
    assert.equal(await readFile(file, 'utf8'), 'hello ');

    const { get, head, after } = await getThenHead(url);
    assert.equal(get.status, 200);
    assert.equal(get.headers['content-length'], '6');
    assert.equal(get.body.toString(), 'hello ');
    assertServersOwnHead(head, 6);
    assert.equal(after.length, 0);
  });

  it('a resumed upload starts at its recorded offset: bytes stored past it are cut first', async () => {
    const url = await createUpload(endpoint, { 'Upload-Length': 12 });
    assert.equal((await patch(url, 0, 'hello ')).status, 204);
    const file = await dataFile(url);
    await appendFile(file, forged);
    const resumed = await patch(url, 6, 'world!');
    assert.equal(resumed.status, 204);
    assert.equal(resumed.headers['upload-offset'], '12');
    assert.equal(await readFile(file, 'utf8'), 'hello world!');

    const { get, head, after } = await getThenHead(url);
    assert.equal(get.body.toString(), 'hello world!');
    assertServersOwnHead(head, 12);
    assert.equal(after.length, 0);
  });

  it('GET sends exactly its Content-Length, whole or by range, whatever the store returns', async () => {
    const url = await createUpload(endpoint, { 'Upload-Length': 12 });
    assert.equal((await patch(url, 0, 'hello world!')).status, 204);
    const store = tusHandler.service.dataStore;
    const read = store.read.bind(store);
    // A store whose stream holds more than asked for (ignores the range, bytes past the end).
    store.read = async () => Readable.from([Buffer.from('hello world!'), Buffer.from(forged)]);
    try {
      const whole = await getThenHead(url);
      assert.equal(whole.get.status, 200);
      assert.equal(whole.get.headers['content-length'], '12');
      assert.equal(whole.get.body.toString(), 'hello world!');
      assertServersOwnHead(whole.head, 12);
      assert.equal(whole.after.length, 0);

      // The store is asked for the range; this one answers from byte 0 whatever the range, too long.
      const ranged = await getThenHead(url, { Range: 'bytes=0-4' });
      assert.equal(ranged.get.status, 206);
      assert.equal(ranged.get.headers['content-length'], '5');
      assert.equal(ranged.get.body.toString(), 'hello');
      assertServersOwnHead(ranged.head, 12);
      assert.equal(ranged.after.length, 0);
    } finally {
      store.read = read;
    }
    // Positive control: the real store, by range.
    const real = await getThenHead(url, { Range: 'bytes=6-' });
    assert.equal(real.get.status, 206);
    assert.equal(real.get.body.toString(), 'world!');
    assertServersOwnHead(real.head, 12);
  });

  it('a store stream that ends short of the length closes the connection instead of answering short', async () => {
    const url = await createUpload(endpoint, { 'Upload-Length': 12 });
    assert.equal((await patch(url, 0, 'hello world!')).status, 204);
    const store = tusHandler.service.dataStore;
    const read = store.read.bind(store);
    store.read = async () => Readable.from([Buffer.from('hello')]);
    try {
      const pathname = new URL(url).pathname;
      const bytes = await exchangeOnOneSocket(port, [
        rawRequest('GET', pathname),
        rawRequest('HEAD', pathname, {}, true),
      ]);
      const { response, rest } = readResponse(bytes);
      assert.equal(response.headers['content-length'], '12');
      // The connection ends after the 5 bytes the store had: no HEAD answer is read as the missing 7.
      assert.equal(response.body.toString(), 'hello');
      assert.equal(rest.length, 0);
    } finally {
      store.read = read;
    }
  });
});

describe('a wharf process killed mid-PATCH', () => {
  it('leaves bytes past the record that a deferred-length finish at the offset never keeps nor serves', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-killed-'));
    try {
      const first = await startWharf({ dataDir });
      const url = await createUpload(first.endpoint, { 'Upload-Defer-Length': 1 });
      const id = url.slice(url.lastIndexOf('/') + 1);
      const file = path.join(dataDir, id);
      assert.equal((await patch(url, 0, 'hello ')).status, 204);
      // A PATCH whose body is the forged response, killed (SIGKILL) after its bytes reached the file and
      // before its record was written.
      const pending = request(url, {
        method: 'PATCH',
        headers: { ...tus, ...octets, 'Upload-Offset': 6, 'Content-Length': 1000 },
      });
      pending.on('error', () => undefined);
      pending.write(forged);
      for (let waited = 0; (await stat(file)).size < 6 + forged.length; waited += 10) {
        assert.ok(waited < 10_000, 'the PATCH bytes never reached the file');
        await sleep(10);
      }
      await first.stop('SIGKILL');
      pending.destroy();
      assert.equal((await stat(file)).size, 6 + forged.length);

      const second = await startWharf({ dataDir });
      try {
        const head = await send('HEAD', url.replace(first.origin, second.origin), { headers: tus });
        assert.equal(head.headers['upload-offset'], '6');
        const secondUrl = url.replace(first.origin, second.origin);
        const finish = await send('PATCH', secondUrl, {
          headers: { ...tus, ...octets, 'Upload-Offset': 6, 'Upload-Length': 6 },
          body: '',
        });
        assert.equal(finish.status, 204);
        assert.equal(await readFile(file, 'utf8'), 'hello ');
        const pathname = new URL(secondUrl).pathname;
        const bytes = await exchangeOnOneSocket(second.port, [
          rawRequest('GET', pathname),
          rawRequest('HEAD', pathname, {}, true),
        ]);
        const get = readResponse(bytes);
        assert.equal(get.response.headers['content-length'], '6');
        assert.equal(get.response.body.toString(), 'hello ');
        const next = readResponse(get.rest, true);
        assertServersOwnHead(next.response, 6);
        assert.equal(next.rest.length, 0);
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
