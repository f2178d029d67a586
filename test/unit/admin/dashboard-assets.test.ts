import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createDashboardHandler,
  dashboardContentSecurityPolicy,
} from '../../../src/server/admin/dashboard.ts';
import { send, sendRaw } from '../../support/http.ts';

let assetsDir: string;
let server: Server;
let origin: string;

before(async () => {
  // Stand-in files: this tests routing and headers; the e2e test serves the real build.
  assetsDir = await mkdtemp(path.join(tmpdir(), 'wharf-dashboard-'));
  await writeFile(path.join(assetsDir, 'index.html'), '<!doctype html><title>page</title>');
  await writeFile(path.join(assetsDir, 'dashboard.css'), 'body{}');
  await writeFile(path.join(assetsDir, 'app.js'), 'export {};');
  await writeFile(path.join(assetsDir, 'secret.txt'), 'not for the web');
  const dashboard = createDashboardHandler({ assetsDir });
  server = createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?', 1)[0]!;
    if (!dashboard(req, res, pathname)) res.writeHead(418).end('not the dashboard');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(assetsDir, { recursive: true, force: true });
});

describe('the dashboard file handler', () => {
  it('serves the page at /admin and /admin/ with its type, CSP and revalidation', async () => {
    for (const pathname of ['/admin', '/admin/', '/admin/?from=bookmark']) {
      const reply = await send('GET', `${origin}${pathname}`);
      assert.equal(reply.status, 200, pathname);
      assert.equal(reply.text, '<!doctype html><title>page</title>');
      assert.equal(reply.headers['content-type'], 'text/html; charset=utf-8');
      assert.equal(reply.headers['content-security-policy'], dashboardContentSecurityPolicy);
      assert.match(String(reply.headers['content-security-policy']), /script-src 'self'(;|$)/);
      assert.equal(reply.headers['cache-control'], 'no-cache');
      assert.equal(reply.headers['x-content-type-options'], 'nosniff');
    }
  });

  it('serves the stylesheet and scripts with their types, and 304 for a known ETag', async () => {
    const css = await send('GET', `${origin}/admin/dashboard.css`);
    assert.equal(css.status, 200);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    const script = await send('GET', `${origin}/admin/app.js`);
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(script.text, 'export {};');
    const again = await send('GET', `${origin}/admin/app.js`, {
      headers: { 'If-None-Match': String(script.headers.etag) },
    });
    assert.equal(again.status, 304);
    assert.equal(again.text, '');
    const head = await send('HEAD', `${origin}/admin/app.js`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '10');
  });

  it('serves no other file: traversal, unlisted names and files missing from the build are 404', async () => {
    for (const pathname of [
      '/admin/secret.txt',
      '/admin/..%2Fpackage.json',
      '/admin/index.html',
      '/admin/app.js/',
      '/admin/render.js',
    ]) {
      const reply = await send('GET', `${origin}${pathname}`);
      assert.equal(reply.status, 404, pathname);
      assert.doesNotMatch(reply.text, /not for the web|"name"/, pathname);
    }
    // Sent as typed: URL parsers would resolve the dots before the request leaves.
    const port = Number(new URL(origin).port);
    for (const pathname of ['/admin/../package.json', '/admin/%2e%2e/package.json', '/admin/./app.js']) {
      const raw = await sendRaw(port, `GET ${pathname} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(raw, /^HTTP\/1\.1 404 /, pathname);
      assert.doesNotMatch(raw, /"name"/, pathname);
    }
  });

  it('answers 405 to other methods and leaves /admin/api and other paths to the next handler', async () => {
    const post = await send('POST', `${origin}/admin/app.js`, { body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    for (const pathname of ['/admin/api', '/admin/api/uploads', '/administrator', '/files/admin']) {
      const reply = await send('GET', `${origin}${pathname}`);
      assert.equal(reply.status, 418, pathname);
    }
  });
});
