import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

let wharf: WharfProcess;
before(async () => {
  wharf = await startWharf({ args: ['--network-timeout', '2'] });
});
after(async () => {
  await wharf.stop();
});

const payload = Buffer.from(Array.from({ length: 1000 }, (_, index) => index % 251));
const idOf = (url: string): string => url.split('/').pop() ?? '';

/** Starts a PATCH by hand, sends part of the body, and keeps the socket for the test to cut or abandon. */
function startPatch(port: number, url: string, offset: number, declaredLength: number, first: Buffer) {
  const socket: Socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.on('error', () => undefined);
  const answered = new Promise<string>((resolve) =>
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1'))),
  );
  socket.write(
    `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
      `Content-Type: application/offset+octet-stream\r\nUpload-Offset: ${offset}\r\nContent-Length: ${declaredLength}\r\n\r\n`,
  );
  socket.write(first);
  return { socket, answered };
}

/** Waits (bounded) until the upload's file holds `size` bytes: the server has written what was sent. */
async function waitForFileSize(file: string, size: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if ((await stat(file)).size >= size) return;
    await sleep(20);
  }
  throw new Error(`${file} never reached ${size} bytes`);
}

// Every test at once: each has an upload (or servers) of its own.
describe('resumption', { concurrency: true }, () => {
  describe('a dropped connection keeps every byte received', () => {
    it('records the bytes of a PATCH whose client went away, and the client resumes from there', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': payload.length });
      const cut = startPatch(wharf.port, url, 0, payload.length, payload.subarray(0, 400));
      await waitForFileSize(path.join(wharf.dataDir, idOf(url)), 400);
      cut.socket.end();
      await cut.answered;
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.headers['upload-offset'], '400');
      const rest = await send('PATCH', url, {
        headers: { ...tus, ...octets, 'Upload-Offset': 400 },
        body: payload.subarray(400),
      });
      assert.equal(rest.status, 204);
      assert.deepEqual((await send('GET', url)).body, payload);
    });
  });

  describe('one writer per upload', () => {
    it('a HEAD from a reconnected client makes the stale PATCH release, and reports its final offset', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': payload.length });
      const stale = startPatch(wharf.port, url, 0, payload.length, payload.subarray(0, 300));
      await waitForFileSize(path.join(wharf.dataDir, idOf(url)), 300);
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.status, 200);
      assert.equal(head.headers['upload-offset'], '300');
      const staleAnswer = await stale.answered;
      assert.match(staleAnswer, /^HTTP\/1\.1 400/);
      assert.match(staleAnswer, /ERR_UPLOAD_INTERRUPTED/);
      const rest = await send('PATCH', url, {
        headers: { ...tus, ...octets, 'Upload-Offset': 300 },
        body: payload.subarray(300),
      });
      assert.equal(rest.status, 204);
      assert.deepEqual((await send('GET', url)).body, payload);
    });

    it('a new PATCH takes over from a stale one; bytes never interleave', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': payload.length });
      const stale = startPatch(wharf.port, url, 0, payload.length, payload.subarray(0, 500));
      await waitForFileSize(path.join(wharf.dataDir, idOf(url)), 500);
      const takeover = await send('PATCH', url, {
        headers: { ...tus, ...octets, 'Upload-Offset': 500 },
        body: payload.subarray(500),
      });
      assert.equal(takeover.status, 204);
      assert.equal(takeover.headers['upload-offset'], String(payload.length));
      // The stale client, still writing, is cut off and cannot add bytes any more.
      stale.socket.write(Buffer.alloc(200, 0xff));
      await stale.answered;
      assert.deepEqual(await readFile(path.join(wharf.dataDir, idOf(url))), payload);
    });

    it('a stalled body times out with a retryable 500 and keeps its bytes', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': payload.length });
      const stalled = startPatch(wharf.port, url, 0, payload.length, payload.subarray(0, 100));
      const answer = await stalled.answered;
      assert.match(answer, /^HTTP\/1\.1 500/);
      assert.match(answer, /ERR_READ_TIMEOUT/);
      assert.match(answer, /Upload-Offset: 100/);
      assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-offset'], '100');
    });
  });

  describe('graceful shutdown', () => {
    it('on SIGTERM, an in-flight PATCH keeps its bytes and the process exits 0', async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-shutdown-'));
      try {
        const first = await startWharf({ dataDir });
        const url = await createUpload(first.endpoint, { 'Upload-Length': payload.length });
        const inFlight = startPatch(first.port, url, 0, payload.length, payload.subarray(0, 250));
        await waitForFileSize(path.join(dataDir, idOf(url)), 250);
        assert.equal(await first.stop('SIGTERM'), 0);
        inFlight.socket.destroy();
        const second = await startWharf({ dataDir });
        try {
          const moved = url.replace(first.origin, second.origin);
          assert.equal((await send('HEAD', moved, { headers: tus })).headers['upload-offset'], '250');
        } finally {
          await second.stop();
        }
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
});
