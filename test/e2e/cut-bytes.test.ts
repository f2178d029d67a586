import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

// A client whose connection drops mid-PATCH and comes straight back (HEAD, as tus-js-client does): every byte
// that had reached the server's socket must be stored and counted, however the connection ended (a killed
// client process closes it after its last bytes; a reset discards only what the client's kernel still held).
// The server is paused (SIGSTOP) while the client sends, so that the bytes wait unread in the server's socket
// when the connection drops: the case where a server that stops reading at the cut loses them.

let wharf: WharfProcess;
before(async () => {
  wharf = await startWharf();
});
after(async () => {
  wharf.child.kill('SIGCONT');
  await wharf.stop();
});

const length = 16 * 1024 * 1024;
const head = 64 * 1024;
/** What the client sends while the server is paused: more than a loopback socket holds unread at once. */
const whilePaused = 8 * 1024 * 1024;
/** What a killed client writes while the server is paused: all of it fits in the two kernels' buffers. */
const killedSends = 2 * 1024 * 1024;
/** The upload's bytes: byte i is (i * 7) mod 251, so any misplaced or lost range shows. */
const pattern = Buffer.from(Array.from({ length: head + whilePaused }, (_, index) => (index * 7) % 251));
const idOf = (url: string): string => url.split('/').pop() ?? '';

function patchHeader(url: string): string {
  return (
    `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n` +
    `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: ${length}\r\n\r\n`
  );
}

/** Waits (bounded) until the upload's file holds `size` bytes: the server reads the body and holds the lock. */
async function waitForFileSize(file: string, size: number): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    if (((await stat(file).catch(() => undefined))?.size ?? 0) >= size) return;
    await sleep(10);
  }
  throw new Error(`${file} never reached ${size} bytes`);
}

/** The bytes of a loopback TCP connection from `localPort` still in its sender's queue (/proc/net/tcp tx_queue). */
function unsent(localPort: number, remotePort: number): number {
  const hex = (port: number): string => `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1]?.endsWith(hex(localPort)) && fields[2]?.endsWith(hex(remotePort)))
      return Number.parseInt(fields[4]?.split(':')[0] ?? '0', 16);
  }
  throw new Error(`no connection from port ${localPort}`);
}

/**
 * The client comes back: its HEAD is sent while the server is still paused, so that the server meets it together
 * with the unread bytes of the cut PATCH, as when a client reconnects at once. Then the HEAD's offset counts every
 * byte received, and the file holds exactly those bytes of the upload.
 */
async function assertKept(url: string, received: number): Promise<void> {
  const asked = send('HEAD', url, { headers: tus });
  await sleep(50);
  wharf.child.kill('SIGCONT');
  const reply = await asked;
  assert.equal(reply.status, 200);
  assert.equal(Number(reply.headers['upload-offset']), received);
  const stored = await readFile(path.join(wharf.dataDir, idOf(url)));
  assert.equal(stored.length, received);
  assert.ok(stored.equals(pattern.subarray(0, received)), 'the stored bytes are the bytes sent, in order');
}

describe('bytes that reached the server before a cut are kept', () => {
  it('a reset connection: every byte the server had received is stored and counted', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': length });
    const socket: Socket = connect(wharf.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(patchHeader(url));
    socket.write(pattern.subarray(0, head));
    await waitForFileSize(path.join(wharf.dataDir, idOf(url)), head);
    wharf.child.kill('SIGSTOP');
    let sent = head;
    try {
      // Writes until the paused server's socket takes no more: the rest waits in the client's queue.
      while (sent < pattern.length) {
        const chunk = pattern.subarray(sent, Math.min(pattern.length, sent + 64 * 1024));
        socket.write(chunk);
        sent += chunk.length;
        let waited = 0;
        while (unsent(socket.localPort ?? 0, wharf.port) > 0 && waited < 100) {
          await sleep(5);
          waited += 5;
        }
        if (waited >= 100) break;
      }
      await sleep(50);
      const received = sent - unsent(socket.localPort ?? 0, wharf.port);
      // Positive control: the paused server holds unread bytes (at least as many again as it had stored).
      assert.ok(received >= 2 * head, `only ${received} bytes reached the server's socket`);
      socket.resetAndDestroy();
      await new Promise((resolve) => socket.once('close', resolve));
      await assertKept(url, received);
    } finally {
      wharf.child.kill('SIGCONT');
    }
  });

  it('a killed client: every byte it had written is stored and counted', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': length });
    // The client is a process of its own, killed with SIGKILL once its kernel took all its bytes: the kernel
    // sends them and then closes the connection.
    const client = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:net').connect(${wharf.port}, '127.0.0.1');
         const chunks = [];
         process.stdin.on('data', (c) => chunks.push(c));
         process.stdin.on('end', () => {
           const all = Buffer.concat(chunks);
           const cut = all.indexOf('\\r\\n\\r\\n') + 4;
           s.write(all.subarray(0, cut + ${head}));
           process.stdout.write('head\\n');
           process.once('message', () => s.write(all.subarray(cut + ${head}), () => process.stdout.write('sent\\n')));
         });`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] },
    );
    const said = (word: string): Promise<void> =>
      new Promise((resolve) => {
        const listen = (chunk: Buffer): void => {
          if (!chunk.toString().includes(word)) return;
          client.stdout?.off('data', listen);
          resolve();
        };
        client.stdout?.on('data', listen);
      });
    const exited = new Promise((resolve) => client.once('exit', resolve));
    try {
      const headSent = said('head');
      client.stdin?.end(
        Buffer.concat([Buffer.from(patchHeader(url)), pattern.subarray(0, head + killedSends)]),
      );
      await headSent;
      await waitForFileSize(path.join(wharf.dataDir, idOf(url)), head);
      wharf.child.kill('SIGSTOP');
      const allSent = said('sent');
      client.send('go');
      await allSent;
      client.kill('SIGKILL');
      await exited;
      await assertKept(url, head + killedSends);
    } finally {
      wharf.child.kill('SIGCONT');
      client.kill('SIGKILL');
    }
  });
});
