import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../support/eventually.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

// Issue 17, point 9: a body trickling below --min-body-rate is ended like a stalled one, keeping its bytes;
// a download the client closes early is not logged as an error.

let wharf: WharfProcess;
before(async () => {
  // 1 s windows: the shortest --network-timeout, so each case lasts about two windows.
  wharf = await startWharf({ args: ['--network-timeout', '1', '--min-body-rate', '100'] });
});
after(async () => {
  await wharf.stop();
});

const payload = Buffer.from(Array.from({ length: 1000 }, (_, index) => index % 251));
const idOf = (url: string): string => url.split('/').pop() ?? '';

/**
 * A PATCH sent by hand over a raw socket, its body written `chunkSize` bytes every `everyMs` until the server
 * answers or the body is all sent. Resolves with the answer and how many body bytes were written.
 */
async function pacedPatch(
  url: string,
  body: Buffer,
  chunkSize: number,
  everyMs: number,
): Promise<{ answer: string; written: number }> {
  const socket: Socket = connect(wharf.port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let answered = false;
  socket.on('data', (chunk) => {
    answered = true;
    chunks.push(chunk);
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(
    `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n` +
      `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  let written = 0;
  // Bounded so that a body the server never ends fails the test instead of hanging it.
  const giveUpAt = Date.now() + 30_000;
  while (written < body.length && !answered && !socket.destroyed && Date.now() < giveUpAt) {
    socket.write(body.subarray(written, written + chunkSize));
    written = Math.min(body.length, written + chunkSize);
    await sleep(everyMs);
  }
  await eventually(() => (answered || socket.destroyed ? true : undefined), 'the server to answer the PATCH');
  // Unreferenced: a pending 5 s timer would keep the test process alive after its last test.
  await Promise.race([closed, sleep(5_000, undefined, { ref: false })]);
  socket.destroy();
  return { answer: Buffer.concat(chunks).toString('latin1'), written };
}

describe('slow request bodies (--min-body-rate)', () => {
  it('a body trickling at 4 bytes per second is ended, its bytes kept and counted', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': payload.length });
    // A byte every 250 ms: never a 1 s stall, far below 100 bytes/s.
    const { answer, written } = await pacedPatch(url, payload, 1, 250);
    assert.match(answer, /^HTTP\/1\.1 500/);
    assert.match(answer, /ERR_BODY_TOO_SLOW/);
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.status, 200);
    const offset = Number(head.headers['upload-offset']);
    assert.ok(offset >= 1 && offset <= written, `offset ${offset}, ${written} bytes written`);
    assert.match(answer, new RegExp(`Upload-Offset: ${offset}\\r\\n`));
    // The kept bytes are the first bytes sent, and the client can resume from there.
    assert.deepEqual(await readFile(path.join(wharf.dataDir, idOf(url))), payload.subarray(0, offset));
    const rest = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': offset },
      body: payload.subarray(offset),
    });
    assert.equal(rest.status, 204);
    assert.deepEqual((await send('GET', url)).body, payload);
  });

  it('a body of the same length sent at a normal pace over several windows completes', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': payload.length });
    // 100 bytes every 200 ms: about 500 bytes/s for 2 s, two 1 s windows (the second judged), above 100 bytes/s.
    const { answer, written } = await pacedPatch(url, payload, 100, 200);
    assert.equal(written, payload.length);
    assert.match(answer, /^HTTP\/1\.1 204/);
    assert.deepEqual((await send('GET', url)).body, payload);
  });
});

describe('a download the client closes early', () => {
  it('is logged at info level, not as an error', async () => {
    // Larger than the socket buffers, so the server is still writing when the client goes.
    const big = Buffer.alloc(48 * 1024 * 1024, 7);
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': big.length });
    const done = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body: big });
    assert.equal(done.status, 204);
    const pathname = new URL(url).pathname;
    const logsBefore = wharf.logs.length;
    await new Promise<void>((resolve, reject) => {
      const socket = connect(wharf.port, '127.0.0.1', () =>
        socket.write(`GET ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`),
      );
      socket.once('data', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', reject);
    });
    const closedLine = await eventually(
      () =>
        wharf.logs
          .slice(logsBefore)
          .find((line) => line.msg === 'client closed the connection before the answer ended'),
      'the log line of the early close',
    );
    assert.equal(closedLine.level, 30);
    assert.equal(closedLine.url, pathname);
    // The access line of that GET is in: every line the request caused has been logged by now.
    await eventually(
      () =>
        wharf.logs
          .slice(logsBefore)
          .find((line) => line.msg === 'access' && line.method === 'GET' && line.url === pathname),
      'the access line of the GET',
    );
    const errors = wharf.logs.slice(logsBefore).filter((line) => Number(line.level) >= 50);
    assert.deepEqual(errors, []);
  });
});
