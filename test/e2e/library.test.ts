import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import express from 'express';
import { createTusHandler } from '../../src/index.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';

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
