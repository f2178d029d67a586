import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createTusHandler } from '../../src/index.ts';
import { eventually } from '../support/eventually.ts';
import { createUpload, octets, tus } from '../support/http.ts';

/**
 * close() of the library's handler promises to close the files it holds (src/index.ts). The files a PATCH in
 * flight holds open are handed back to the stores after their last write, which is after close() closed what the
 * stores kept: they must be closed then, not kept by a closed store for as long as the process lives (a handler
 * created and closed again and again, as a test suite or a per-tenant app does, ends at EMFILE).
 */

/** This process's descriptors open on files of `folder` (Linux: /proc/self/fd links to their paths). */
async function openIn(folder: string): Promise<string[]> {
  const open: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(folder + path.sep)) open.push(path.basename(target));
  }
  return open;
}

test('close() while a PATCH is in flight: its bytes are kept, and no file of the upload stays open once it ends', async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-close-files-'));
  const handler = createTusHandler({ options: { dataDir, infoDir: dataDir, logLevel: 'off' } });
  const server = createServer(handler);
  try {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const url = await createUpload(`${origin}/files/`, { 'Upload-Length': 11 });
    const id = new URL(url).pathname.split('/').pop() as string;
    const patch = request(new URL(url), {
      method: 'PATCH',
      headers: { ...tus, ...octets, 'Upload-Offset': '0', 'Content-Length': '11' },
    });
    const ended = new Promise<void>((resolve) => {
      patch.on('response', (response) => {
        response.resume();
        response.on('close', () => resolve());
      });
      patch.on('error', () => resolve());
    });
    patch.write('hello');
    // The first part is in the upload's file: the PATCH holds the file open and writes through it.
    await eventually(
      async () => ((await readFile(path.join(dataDir, id), 'utf8')) === 'hello' ? true : undefined),
      'the first part written',
    );
    await handler.close();
    await ended;
    assert.equal(await readFile(path.join(dataDir, id), 'utf8'), 'hello');
    // Polled: the PATCH's last record write ends a moment after its answer.
    await eventually(
      async () => ((await openIn(dataDir)).length === 0 ? true : undefined),
      'every file of the data folder closed',
      5_000,
    ).catch(async (error: unknown) => {
      throw new Error(`${String(error)}; still open: ${(await openIn(dataDir)).join(', ')}`);
    });
  } finally {
    server.closeAllConnections();
    server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
