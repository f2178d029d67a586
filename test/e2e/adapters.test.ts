import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { serve } from '@hono/node-server';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import * as tus from 'tus-js-client';
import wharfFastify from '../../src/fastify.ts';
import { createFetchHandler } from '../../src/index.ts';
import { send, tus as tusHeaders } from '../support/http.ts';

const KiB = 1024;
const chunkSize = 256 * KiB;
const sha256 = (bytes: Buffer | Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** tus-js-client uploads two chunks and stops (as a closed tab would); a second client resumes from the URL. */
async function uploadWithResume(
  endpoint: string,
  data: Buffer,
): Promise<{ url: string; offsetAtResume: number }> {
  const url = await new Promise<string>((resolve, reject) => {
    let chunks = 0;
    const first = new tus.Upload(data, {
      endpoint,
      uploadSize: data.length,
      chunkSize,
      retryDelays: [],
      onChunkComplete: () => {
        if (++chunks === 2) first.abort().then(() => resolve(first.url ?? ''), reject);
      },
      onSuccess: () => reject(new Error('finished before it was stopped')),
      onError: reject,
    });
    first.start();
  });
  const head = await send('HEAD', url, { headers: tusHeaders });
  const offsetAtResume = Number(head.headers['upload-offset']);
  await new Promise<void>((resolve, reject) => {
    const second = new tus.Upload(data, {
      endpoint,
      uploadUrl: url,
      uploadSize: data.length,
      chunkSize,
      retryDelays: [],
      onSuccess: () => resolve(),
      onError: reject,
    });
    second.start();
  });
  return { url, offsetAtResume };
}

async function checkRoundTrip(endpoint: string): Promise<void> {
  const data = randomBytes(3 * 1024 * KiB + 17);
  const { url, offsetAtResume } = await uploadWithResume(endpoint, data);
  assert.ok(url.startsWith(endpoint), url);
  assert.equal(offsetAtResume, 2 * chunkSize, 'the second client resumed where the first stopped');
  const download = await fetch(url);
  assert.equal(download.status, 200);
  assert.equal(download.headers.get('content-length'), String(data.length));
  assert.equal(sha256(new Uint8Array(await download.arrayBuffer())), sha256(data));
  const options = await fetch(endpoint, { method: 'OPTIONS' });
  assert.equal(options.status, 204);
  assert.equal(options.headers.get('tus-version'), '1.0.0');
}

describe('createFetchHandler in Hono (served by @hono/node-server)', () => {
  let dataDir: string;
  let origin: string;
  let close: () => void;
  let handler: ReturnType<typeof createFetchHandler>;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-hono-'));
    handler = createFetchHandler({
      options: { url: '/files', dataDir, infoDir: dataDir, logLevel: 'error' },
    });
    const app = new Hono();
    app.get('/hello', (c) => c.text('hi'));
    app.all('/files', (c) => handler(c.req.raw));
    app.all('/files/*', (c) => handler(c.req.raw));
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started));
    });
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => {
      handler.close();
      server.close();
    };
  });
  after(async () => {
    close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('tus-js-client uploads, stops, resumes; the download is byte-exact; other routes still answer', async () => {
    await checkRoundTrip(`${origin}/files/`);
    assert.equal(await (await fetch(`${origin}/hello`)).text(), 'hi');
  });

  it('answers HEAD and 204 without a body, and errors with their status and code', async () => {
    const missing = await fetch(`${origin}/files/0123456789abcdef0123456789abcdef`, {
      method: 'HEAD',
      headers: { 'Tus-Resumable': '1.0.0' },
    });
    assert.equal(missing.status, 404);
    const wrongVersion = await fetch(`${origin}/files/`, {
      method: 'POST',
      headers: { 'Tus-Resumable': '0.2.0', 'Upload-Length': '3' },
    });
    assert.equal(wrongVersion.status, 412);
    assert.equal(wrongVersion.headers.get('tus-version'), '1.0.0');
  });
});

describe('the Fastify plugin (<package>/fastify)', () => {
  let dataDir: string;
  let origin: string;
  let app: FastifyInstance;

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-fastify-'));
    app = Fastify();
    app.post('/echo', async (request) => request.body);
    await app.register(wharfFastify, {
      options: { url: '/uploads', dataDir, infoDir: dataDir, logLevel: 'error' },
    });
    origin = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('tus-js-client uploads, stops, resumes; the download is byte-exact', async () => {
    await checkRoundTrip(`${origin}/uploads/`);
  });

  it("leaves the app's other routes their own body parsers", async () => {
    const echoed = await fetch(`${origin}/echo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    assert.deepEqual(await echoed.json(), { a: 1 });
  });
});
