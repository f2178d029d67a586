import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from 'esbuild';
import type { BrowserContext, Page } from 'playwright-core';
import { startBackendProxy } from '../support/backend-proxy.ts';
import { downloadSha256, MiB } from '../support/bytes.ts';
import { type HeadlessChromium, launchChromium } from '../support/chromium.ts';
import { cuttingProxy } from '../support/cutting-proxy.ts';
import { send, tus as tusHeaders } from '../support/http.ts';
import { redisUrl } from '../support/services.ts';
import { accessLog, startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * The file's unit of size: a quarter MiB. Every size below is in it, chunks and the throttled upload rate too
 * (16 units a second), so each upload takes as long and is cut, paused and stopped at the same places as it was
 * with sizes in MiB and 16 MiB/s, with a quarter of the bytes for the page to make, hash and send and for Wharf
 * to store. The file store has no smallest chunk.
 */
const unit = MiB / 4;

/** What uploadWithUppy in test/e2e/clients/uppy-page.js resolves with. */
interface PageResult {
  readonly sha256: string;
  readonly successful: number;
  readonly failed: number;
  readonly uploadURL: string | null;
  readonly progress: number;
  readonly pauses: readonly number[];
  readonly errors: readonly string[];
}

/** What it resolves with when asked to stop part-way (`stopAt`). */
interface StoppedResult {
  readonly sha256: string;
  readonly stoppedAt: number;
  readonly uploadURL: string | null;
  readonly errors: readonly string[];
}

interface UploadRequest {
  readonly endpoint: string;
  readonly size: number;
  readonly chunkSize: number;
  readonly pauseAt?: number;
  readonly resumeAfterMs?: number;
  readonly stopAt?: number;
  readonly name?: string;
  readonly seed?: number;
  readonly retryDelays?: readonly number[];
}

let pageServer: Server;
let pageOrigin: string;
let wharf: WharfProcess;
let chrome: HeadlessChromium | undefined;
let browser: BrowserContext;
let page: Page;

/** Serves the page and its bundle (@uppy/core and @uppy/tus from node_modules, bundled by esbuild). */
async function servePage(): Promise<{ server: Server; origin: string }> {
  const bundle = await build({
    entryPoints: [path.join(import.meta.dirname, 'clients/uppy-page.js')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const script = bundle.outputFiles[0]!.contents;
  const html =
    '<!doctype html><meta charset="utf-8"><title>Uppy</title><script type="module" src="/app.js"></script>';
  const server = createServer((req, res) => {
    if (req.url === '/app.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(script);
    } else if (req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, origin: `http://127.0.0.1:${port}` };
}

before(
  async () => {
    ({ server: pageServer, origin: pageOrigin } = await servePage());
    // The page and the tus endpoint are on different ports, so every request is cross-origin and needs CORS.
    wharf = await startWharf({ args: ['--cors', pageOrigin] });
    chrome = await launchChromium();
    ({ browser, page } = chrome);
    await page.goto(`${pageOrigin}/`);
    await page.waitForFunction(() => 'uploadWithUppy' in globalThis);
  },
  { timeout: 60_000 },
);

after(async () => {
  await chrome?.close();
  await wharf?.stop();
  pageServer?.close();
});

function uploadInPage<Result = PageResult>(request: UploadRequest): Promise<Result> {
  return page.evaluate(
    (options) =>
      (globalThis as unknown as { uploadWithUppy(o: typeof options): Promise<Result> }).uploadWithUppy(
        options,
      ),
    request,
  );
}

/**
 * Runs `work` with the page's upload throughput limited (DevTools network emulation): on loopback a 5-unit chunk
 * is sent before a pause can land, at 16 units a second a pause interrupts a PATCH.
 */
async function throttled<T>(work: () => Promise<T>): Promise<T> {
  const devtools = await browser.newCDPSession(page);
  await devtools.send('Network.enable');
  await devtools.send('Network.emulateNetworkConditions', {
    offline: false,
    latency: 0,
    downloadThroughput: -1,
    uploadThroughput: 16 * unit,
  });
  try {
    return await work();
  } finally {
    await devtools.detach();
  }
}

/** The access-log lines of one upload. */
async function requestsFor(url: string): Promise<Record<string, unknown>[]> {
  const pathname = new URL(url).pathname;
  return (await accessLog(wharf)).filter((line) => line.url === pathname);
}

// A hung browser or upload fails the file within a minute instead of holding CI.
describe('Uppy in headless Chromium against the real server', { timeout: 60_000 }, () => {
  it('uploads a Blob of 12 units in chunks of 5 across origins and downloads the same bytes', async () => {
    const size = 12 * unit + 11;
    const result = await uploadInPage({ endpoint: wharf.endpoint, size, chunkSize: 5 * unit });
    assert.deepEqual(result.errors, []);
    assert.equal(result.successful, 1);
    assert.equal(result.failed, 0);
    assert.equal(result.progress, size);
    const url = String(result.uploadURL);
    assert.ok(url.startsWith(wharf.endpoint), url);
    assert.equal(await downloadSha256(url), result.sha256);

    const head = await send('HEAD', url, { headers: tusHeaders });
    assert.equal(head.headers['upload-offset'], String(size));
    const pairs = String(head.headers['upload-metadata']).split(',');
    assert.ok(pairs.includes(`filename ${Buffer.from('generated.bin').toString('base64')}`), pairs.join());
    const patches = (await requestsFor(url)).filter((line) => line.method === 'PATCH');
    assert.deepEqual(
      patches.map((line) => line.status),
      [204, 204, 204],
      'three PATCHes of 5, 5 and 2 units',
    );
  });

  it('pauses in the middle of the upload and resumes from the offset the server kept', async () => {
    const size = 12 * unit;
    const result = await throttled(() =>
      uploadInPage({
        endpoint: wharf.endpoint,
        size,
        chunkSize: 5 * unit,
        pauseAt: 2 * unit,
        resumeAfterMs: 100,
      }),
    );
    assert.deepEqual(result.errors, []);
    assert.equal(result.successful, 1);
    assert.equal(result.pauses.length, 1, 'the page paused once');
    assert.ok(result.pauses[0]! < 5 * unit, `paused in the first chunk, at ${result.pauses[0]}`);
    const url = String(result.uploadURL);
    assert.equal(await downloadSha256(url), result.sha256);
    // On resume the client asked the server for the offset (HEAD) and went on from there.
    const methods = (await requestsFor(url)).map((line) => line.method);
    assert.ok(methods.includes('HEAD'), methods.join());
  });

  it('continues an unfinished upload after a page reload (the URL tus-js-client stored for the file)', async () => {
    const request = {
      endpoint: wharf.endpoint,
      size: 12 * unit,
      chunkSize: 5 * unit,
      name: 'reload.bin',
      seed: 7,
    };
    const stopped = await throttled(() => uploadInPage<StoppedResult>({ ...request, stopAt: 2 * unit }));
    assert.ok(stopped.stoppedAt < 5 * unit, `stopped at ${stopped.stoppedAt}`);
    const url = String(stopped.uploadURL);
    const before = await send('HEAD', url, { headers: tusHeaders });
    assert.ok(Number(before.headers['upload-offset']) < 12 * unit, 'unfinished before the reload');

    await page.reload();
    await page.waitForFunction(() => 'uploadWithUppy' in globalThis);
    const result = await uploadInPage(request);
    assert.deepEqual(result.errors, []);
    assert.equal(result.successful, 1);
    assert.equal(result.sha256, stopped.sha256, 'the page made the same file again');
    assert.equal(result.uploadURL, url, 'the same upload was continued, not a new one created');
    assert.equal(await downloadSha256(url), result.sha256);
    const methods = (await requestsFor(url)).map((line) => line.method);
    assert.ok(methods.includes('HEAD'), methods.join());
  });

  it('retries after the connection is cut mid-chunk and finishes without a reload', async () => {
    const proxy = await cuttingProxy(wharf.port, 3 * unit);
    try {
      const size = 12 * unit;
      const endpoint = `http://127.0.0.1:${proxy.port}/files/`;
      const result = await uploadInPage({ endpoint, size, chunkSize: 5 * unit });
      assert.equal(proxy.cuts(), 1, 'the proxy cut one connection');
      assert.equal(result.successful, 1, result.errors.join());
      const url = String(result.uploadURL).replace(`127.0.0.1:${proxy.port}`, `127.0.0.1:${wharf.port}`);
      assert.equal(await downloadSha256(url), result.sha256);
      const methods = (await requestsFor(url)).map((line) => line.method);
      assert.ok(methods.includes('HEAD'), `the client asked where to resume: ${methods.join()}`);
    } finally {
      proxy.server.close();
    }
  });

  it('cannot upload from an origin that --cors does not list (the browser stops at the preflight)', async () => {
    const elsewhere = await startWharf({ args: ['--cors', 'https://uploads.example.com'] });
    try {
      const result = await uploadInPage({
        endpoint: elsewhere.endpoint,
        size: unit,
        chunkSize: unit,
        retryDelays: [],
      });
      assert.equal(result.successful, 0);
      assert.equal(result.failed, 1);
      const methods = (await accessLog(elsewhere)).map((line) => line.method);
      assert.deepEqual(methods, ['OPTIONS'], 'only the preflight reached the server');
    } finally {
      await elsewhere.stop();
    }
  });
});

describe('Uppy while the record store (Redis) is stopped mid-upload', { timeout: 60_000 }, () => {
  it('waits (HEAD 423, PATCH 503) and resumes the same upload instead of creating a new one; the bytes are exact', async () => {
    const redisProxy = await startBackendProxy(Number(new URL(redisUrl).port));
    const prefix = `test-uppy-outage-${randomUUID()}:`;
    const dsn = new URL(redisUrl);
    dsn.port = String(redisProxy.port);
    const instance = await startWharf({
      args: [
        '--cors',
        pageOrigin,
        '--info-storage',
        'redis-info-storage',
        '--info-db-dsn',
        dsn.toString(),
        '--redis-key-prefix',
        prefix,
        '--backend-timeout',
        '2',
        // The PATCH cut at its record write cannot release its lock: it frees itself in 2 s, not 10.
        '--lock-ttl',
        '2',
      ],
    });
    try {
      const size = 16 * unit;
      // Redis goes away at the record write of the second chunk (the proxy cuts as it sees it, whatever this process
      // is busy with), while Uppy keeps uploading, and comes back once Wharf met the outage (a PATCH refused with
      // 503 or a HEAD told to wait with 423).
      const chunkSize = unit / 4;
      redisProxy.cutAt(`"offset":${2 * chunkSize},`);
      const uploading = throttled(() =>
        uploadInPage({
          endpoint: instance.endpoint,
          size,
          chunkSize,
          retryDelays: [0, 200, 500, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 2000],
        }),
      );
      const metOutage = (): boolean =>
        instance.logs.some(
          (line) =>
            (line.method === 'PATCH' && line.status === 503) ||
            (line.method === 'HEAD' && line.status === 423),
        );
      for (let waited = 0; !metOutage(); waited += 20) {
        if (waited > 20_000) throw new Error('Wharf never met the outage');
        await sleep(20);
      }
      redisProxy.restore();
      const result = await uploading;
      assert.equal(result.successful, 1, result.errors.join());
      const url = String(result.uploadURL);
      assert.equal(await downloadSha256(url), result.sha256);
      const log = await accessLog(instance);
      assert.equal(log.filter((line) => line.method === 'POST').length, 1, 'one upload, resumed');
      const statuses = log.map((line) => `${line.method} ${line.status}`);
      assert.ok(
        statuses.includes('HEAD 423') || statuses.includes('PATCH 503'),
        `the outage was met: ${statuses.join()}`,
      );
    } finally {
      await instance.stop();
      await redisProxy.close();
      const { Redis } = await import('ioredis');
      const client = new Redis(redisUrl);
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
      client.disconnect();
    }
  });
});
