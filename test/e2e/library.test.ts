import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import express from 'express';
import { createTusHandler } from '../../src/index.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { repoRoot } from '../support/wharf-process.ts';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function roundTrip(endpoint: string): Promise<void> {
  const url = await createUpload(endpoint, { 'Upload-Length': 11 });
  const patch = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': 0 },
    body: 'hello world',
  });
  assert.equal(patch.status, 204);
  assert.equal((await send('GET', url)).text, 'hello world');
}

describe('createTusHandler (library use)', () => {
  it('serves tus from plain node:http', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-lib-'));
    const tusHandler = createTusHandler({ options: { dataDir, infoDir: dataDir, logLevel: 'error' } });
    const server = createServer(tusHandler);
    try {
      await roundTrip(`${await listen(server)}/files/`);
    } finally {
      server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('mounts in Express next to other routes', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-express-'));
    const tusHandler = createTusHandler({
      options: { url: '/uploads', dataDir, infoDir: dataDir, logLevel: 'error' },
    });
    const app = express();
    app.get('/hello', (_req, res) => {
      res.send('hi');
    });
    app.all(['/uploads', '/uploads/*rest'], tusHandler);
    const server = createServer(app);
    try {
      const origin = await listen(server);
      await roundTrip(`${origin}/uploads/`);
      assert.equal((await send('GET', `${origin}/hello`)).text, 'hi');
      const options = await send('OPTIONS', `${origin}/uploads`);
      assert.equal(options.headers['tus-version'], '1.0.0');
    } finally {
      server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("the README's library example", () => {
  it('runs as written: it listens, serves its own route and tus on /files/', {
    timeout: 60_000,
  }, async () => {
    const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Using Wharf as a library'));
    const code = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(code?.includes('.listen('), 'the first example listens');
    // Inside the clone, so its `import ... from '<package>'` resolves to this package (a self-reference) and
    // express to its node_modules; run from an empty folder, where its ./uploads lands.
    const scratch = path.join(repoRoot, '.tmp');
    await mkdir(scratch, { recursive: true });
    const folder = await mkdtemp(path.join(scratch, 'readme-'));
    const cwd = await mkdtemp(path.join(tmpdir(), 'wharf-readme-'));
    const file = path.join(folder, 'server.mjs');
    await writeFile(file, code ?? '');
    const free = createServer();
    const port = Number(new URL(await listen(free)).port);
    await new Promise((resolve) => free.close(resolve));
    const child = spawn(process.execPath, [file], { cwd, env: { ...process.env, PORT: String(port) } });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('tus endpoint')) resolve();
        });
        child.once('exit', (status) => reject(new Error(`example exited with ${status}`)));
      });
      const origin = `http://127.0.0.1:${port}`;
      assert.equal((await send('GET', `${origin}/`)).status, 200);
      await roundTrip(`${origin}/files/`);
    } finally {
      child.kill();
      await rm(folder, { recursive: true, force: true });
      await rm(cwd, { recursive: true, force: true });
    }
  });
});
