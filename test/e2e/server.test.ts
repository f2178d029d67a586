import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../support/eventually.ts';
import { writeHoldingModule } from '../support/holding-module.ts';
import { createUpload, octets, send, sendRaw, tus } from '../support/http.ts';
import {
  logsWith,
  repoRoot,
  runWharfToEnd,
  scratchCwd,
  startWharf,
  type WharfProcess,
  wharfBin,
} from '../support/wharf-process.ts';

let wharf: WharfProcess;
before(async () => {
  wharf = await startWharf();
});
after(async () => {
  await wharf.stop();
});

// Every test at once: those on the shared server use uploads of their own, the others start their own server.
describe('server', { concurrency: true }, () => {
  describe('health', () => {
    it('answers 200 with a JSON status, outside the tus endpoint', async () => {
      const reply = await send('GET', `${wharf.origin}/health`);
      assert.equal(reply.status, 200);
      assert.deepEqual(JSON.parse(reply.text), { status: 'ok' });
    });

    it('answers liveness on /health/live without checking backends', async () => {
      const reply = await send('GET', `${wharf.origin}/health/live`);
      assert.equal(reply.status, 200);
      assert.deepEqual(JSON.parse(reply.text), { status: 'ok' });
    });
  });

  describe('access log', () => {
    it('writes one JSON line per request with method, url and status', async () => {
      await send('HEAD', `${wharf.endpoint}nothing-here`, { headers: tus });
      const find = () =>
        wharf.logs.find((line) => line.msg === 'access' && line.url === '/files/nothing-here');
      // Logs are written asynchronously: wait (bounded) for the line to arrive.
      for (let attempt = 0; attempt < 100 && !find(); attempt++) await sleep(20);
      const entry = find();
      assert.equal(entry?.method, 'HEAD');
      assert.equal(entry?.status, 404);
    });
  });

  describe('CORS', () => {
    it('answers a preflight from any origin by default and exposes the tus headers', async () => {
      const preflight = await send('OPTIONS', wharf.endpoint, {
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PATCH' },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example');
      assert.match(String(preflight.headers['access-control-allow-headers']), /Upload-Offset/);
      assert.match(String(preflight.headers['access-control-allow-methods']), /PATCH/);
      const post = await send('POST', wharf.endpoint, {
        headers: { ...tus, Origin: 'https://app.example', 'Upload-Length': 1 },
      });
      assert.match(String(post.headers['access-control-expose-headers']), /Location/);
      assert.match(String(post.headers['access-control-expose-headers']), /Upload-Offset/);
    });

    it('with --cors, allows only matching origins', async () => {
      const strict = await startWharf({ args: ['--cors', 'https://*.example.com,http://localhost:????'] });
      try {
        const allowed = await send('OPTIONS', strict.endpoint, {
          headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' },
        });
        assert.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com');
        const port = await send('OPTIONS', strict.endpoint, {
          headers: { Origin: 'http://localhost:8080', 'Access-Control-Request-Method': 'POST' },
        });
        assert.equal(port.headers['access-control-allow-origin'], 'http://localhost:8080');
        const denied = await send('OPTIONS', strict.endpoint, {
          headers: { Origin: 'https://evil.test', 'Access-Control-Request-Method': 'POST' },
        });
        assert.equal(denied.headers['access-control-allow-origin'], undefined);
      } finally {
        await strict.stop();
      }
    });
  });

  describe('--behind-proxy', () => {
    const proxied = { 'X-Forwarded-Host': 'uploads.example.com', 'X-Forwarded-Proto': 'https' };

    it('ignores X-Forwarded-* without the flag', async () => {
      const reply = await send('POST', wharf.endpoint, {
        headers: { ...tus, ...proxied, 'Upload-Length': 1 },
      });
      assert.match(String(reply.headers.location), new RegExp(`^${wharf.endpoint}`));
    });

    it('builds Location from Forwarded / X-Forwarded-* with the flag', async () => {
      const trusting = await startWharf({ args: ['--behind-proxy'] });
      try {
        const reply = await send('POST', trusting.endpoint, {
          headers: { ...tus, ...proxied, 'Upload-Length': 1 },
        });
        assert.match(
          String(reply.headers.location),
          /^https:\/\/uploads\.example\.com\/files\/[0-9a-f-]{36}$/,
        );
        const forwarded = await send('POST', trusting.endpoint, {
          headers: {
            ...tus,
            Forwarded: 'for=127.0.0.60;proto=https;host=cdn.example.org',
            'Upload-Length': 1,
          },
        });
        assert.match(String(forwarded.headers.location), /^https:\/\/cdn\.example\.org\/files\//);
      } finally {
        await trusting.stop();
      }
    });
  });

  describe('limits', () => {
    it('refuses headers larger than --max-header-size with 431', async () => {
      const answer = await sendRaw(
        wharf.port,
        `POST /files/ HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1\r\nUpload-Metadata: k ${'QUFB'.repeat(6000)}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(answer, /^HTTP\/1\.1 431/);
    });

    it('enforces --max-body-size on a single PATCH with 413', async () => {
      const limited = await startWharf({ args: ['--max-body-size', '4'] });
      try {
        const url = await createUpload(limited.endpoint, { 'Upload-Length': 10 });
        const tooBig = await send('PATCH', url, {
          headers: { ...tus, ...octets, 'Upload-Offset': 0 },
          body: 'hello',
        });
        assert.equal(tooBig.status, 413);
        const fits = await send('PATCH', url, {
          headers: { ...tus, ...octets, 'Upload-Offset': 0 },
          body: 'hell',
        });
        assert.equal(fits.status, 204);
      } finally {
        await limited.stop();
      }
    });

    it('refuses Upload-Length: 0 with --allow-empty=false, as rustus does by default', async () => {
      const strict = await startWharf({ env: { RUSTUS_ALLOW_EMPTY: 'false' } });
      try {
        const reply = await send('POST', strict.endpoint, { headers: { ...tus, 'Upload-Length': 0 } });
        assert.equal(reply.status, 400);
        // Nor through a deferred length declared 0 later; a deferred length above 0 is taken (positive control).
        const deferred = await createUpload(strict.endpoint, { 'Upload-Defer-Length': 1 });
        const empty = await send('PATCH', deferred, {
          headers: {
            ...tus,
            'Upload-Offset': 0,
            'Upload-Length': 0,
            'Content-Type': 'application/offset+octet-stream',
          },
        });
        assert.equal(empty.status, 400, empty.text);
        assert.match(empty.text, /ERR_EMPTY_UPLOAD_REFUSED/);
        const head = await send('HEAD', deferred, { headers: tus });
        assert.equal(head.headers['upload-defer-length'], '1', 'the length stays deferred');
        const sized = await send('PATCH', deferred, {
          headers: {
            ...tus,
            'Upload-Offset': 0,
            'Upload-Length': 3,
            'Content-Type': 'application/offset+octet-stream',
          },
          body: 'abc',
        });
        assert.equal(sized.status, 204, sized.text);
        assert.equal((await send('GET', deferred)).text, 'abc');
      } finally {
        await strict.stop();
      }
    });
  });

  describe('--tus-extensions', () => {
    it('turns off what is not listed', async () => {
      const minimal = await startWharf({ args: ['--tus-extensions', 'creation'] });
      try {
        const options = await send('OPTIONS', minimal.endpoint);
        assert.equal(options.headers['tus-extension'], 'creation');
        assert.equal(options.headers['tus-checksum-algorithm'], undefined);
        const url = await createUpload(minimal.endpoint, { 'Upload-Length': 1 });
        assert.equal((await send('DELETE', url, { headers: tus })).status, 405);
        assert.equal((await send('GET', url)).status, 405);
        const deferred = await send('POST', minimal.endpoint, {
          headers: { ...tus, 'Upload-Defer-Length': '1' },
        });
        assert.equal(deferred.status, 400);
        // The IETF draft's requests still do what those extensions are: said once at start, naming them.
        const warnings = logsWith(minimal, 'still apply to IETF draft requests');
        assert.equal(warnings.length, 1, JSON.stringify(warnings));
        assert.deepEqual(warnings[0]?.extensions, [
          'creation-with-upload',
          'creation-defer-length',
          'checksum',
        ]);
      } finally {
        await minimal.stop();
      }
      // Without the draft nothing is left unhonoured: no warning.
      const tusOnly = await startWharf({ args: ['--tus-extensions', 'creation', '--ietf-draft=false'] });
      try {
        assert.equal((await send('OPTIONS', tusOnly.endpoint)).headers['tus-extension'], 'creation');
        assert.deepEqual(logsWith(tusOnly, 'still apply to IETF draft requests'), []);
      } finally {
        await tusOnly.stop();
      }
    });
  });

  describe('the wharf command', () => {
    it('prints --help generated from the option table', () => {
      const result = spawnSync(process.execPath, [wharfBin, '--help'], { cwd: scratchCwd, encoding: 'utf8' });
      assert.equal(result.status, 0);
      assert.match(result.stdout, /--data-dir <text>/);
      assert.match(result.stdout, /RUSTUS_SERVER_PORT/);
    });

    it("prints --version from the package's package.json", async () => {
      // The command runs from its bundle (dist/cli-bundle/), which reads package.json relative to dist/cli/main.js.
      const { version } = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as {
        version: string;
      };
      const result = spawnSync(process.execPath, [wharfBin, '--version'], {
        cwd: scratchCwd,
        encoding: 'utf8',
      });
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, `${version}\n`);
    });

    it('exits 2 with a clear message on a bad value', () => {
      const result = spawnSync(process.execPath, [wharfBin, '--port', 'eighty'], {
        cwd: scratchCwd,
        encoding: 'utf8',
      });
      assert.equal(result.status, 2);
      assert.match(result.stderr, /wharf: --port: expected an integer, got "eighty"/);
    });

    it('honours a custom --url', async () => {
      const custom = await startWharf({ args: ['--url', '/api/tus/'], basePath: '/api/tus' });
      try {
        const url = await createUpload(custom.endpoint, { 'Upload-Length': 1 });
        assert.match(url, /\/api\/tus\/[0-9a-f-]{36}$/);
        assert.equal((await send('HEAD', url, { headers: tus })).status, 200);
      } finally {
        await custom.stop();
      }
    });
  });

  describe('cluster workers (--workers)', () => {
    it('serves one upload from several processes without interleaving writers', async () => {
      const clustered = await startWharf({ args: ['--workers', '2'] });
      try {
        const payload = Buffer.alloc(1000, 7);
        const url = await createUpload(clustered.endpoint, { 'Upload-Length': payload.length });
        const file = path.join(clustered.dataDir, url.split('/').pop() ?? '');
        const socket: Socket = connect(clustered.port, '127.0.0.1');
        socket.on('error', () => undefined);
        socket.write(
          `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n` +
            `Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 1000\r\n\r\n`,
        );
        socket.write(payload.subarray(0, 600));
        for (let attempt = 0; attempt < 200 && (await stat(file)).size < 600; attempt++) await sleep(20);
        // Several requests so that, with round-robin, at least one lands on the other worker.
        for (let index = 0; index < 3; index++) {
          const head = await send('HEAD', url, { headers: tus });
          assert.equal(head.headers['upload-offset'], '600');
        }
        const rest = await send('PATCH', url, {
          headers: { ...tus, ...octets, 'Upload-Offset': 600 },
          body: payload.subarray(600),
        });
        assert.equal(rest.status, 204);
        socket.destroy();
        assert.deepEqual(await readFile(file), payload);
      } finally {
        await clustered.stop();
      }
    });

    it('with --port 0, a worker replacing the only one listening listens on the announced port', async () => {
      // Worker slot 2 waits in a hook module's top-level code until the test lets it go, so that slot 1 is the
      // only worker listening when it is killed.
      const folder = await mkdtemp(path.join(tmpdir(), 'wharf-cluster-port-'));
      const release = path.join(folder, 'release');
      await writeHoldingModule(path.join(folder, 'modules'), release);
      const clustered = await startWharf({
        args: ['--workers', '2', '--hooks-modules-dir', path.join(folder, 'modules')],
      });
      const listening = (): Record<string, unknown>[] =>
        clustered.logs.filter((line) => String(line.msg).startsWith('wharf listening'));
      try {
        const [first] = listening();
        assert.ok(first !== undefined && typeof first.pid === 'number');
        process.kill(first.pid, 'SIGKILL');
        const replacement = await eventually(() => listening()[1], 'the replacement worker to listen');
        assert.notEqual(replacement.pid, first.pid);
        assert.equal(replacement.port, clustered.port, 'the replacement listens on the announced port');
        // A client that knows only the announced port is served.
        const url = await createUpload(clustered.endpoint, { 'Upload-Length': 3 });
        assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-length'], '3');
        await writeFile(release, '');
        const second = await eventually(() => listening()[2], 'worker slot 2 to listen');
        assert.equal(second.port, clustered.port, 'worker slot 2 listens on the announced port');
      } finally {
        await writeFile(release, '');
        await clustered.stop();
        await rm(folder, { recursive: true, force: true });
      }
    });

    it('a first worker that cannot listen (port in use) stops the server with its error, instead of being replaced again and again', async () => {
      const holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      const address = holder.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-cluster-in-use-'));
      try {
        // Bounded so that a loop of replacements fails the test instead of hanging it (no timing assertion).
        const { code, stdout, stderr } = await runWharfToEnd(
          ['--host', '127.0.0.1', '--port', String(port), '--workers', '2', '--data-dir', dataDir],
          { killAfterMs: 60_000 },
        );
        const logs = stdout
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
        assert.equal(code, 1, stdout);
        assert.match(stderr, /EADDRINUSE/);
        assert.equal(
          logs.filter((line) => String(line.msg).startsWith('a worker could not start')).length,
          1,
          stdout,
        );
        assert.deepEqual(
          logs.filter((line) => /starting a new one|starting another/.test(String(line.msg))),
          [],
        );
      } finally {
        await new Promise<void>((resolve) => holder.close(() => resolve()));
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    it('a replacement worker that cannot start is started again after a wait while the other worker serves', async () => {
      // A hook module that throws at load while the file `refuse` exists: a replacement started then fails.
      const folder = await mkdtemp(path.join(tmpdir(), 'wharf-cluster-replacement-'));
      const refuse = path.join(folder, 'refuse');
      await mkdir(path.join(folder, 'modules', 'gate'), { recursive: true });
      await writeFile(
        path.join(folder, 'modules', 'gate', 'index.mjs'),
        `import { existsSync } from 'node:fs';
if (existsSync(${JSON.stringify(refuse)})) throw new Error('this worker is kept from starting by the test');
export default () => {};
`,
      );
      const clustered = await startWharf({
        args: ['--workers', '2', '--hooks-modules-dir', path.join(folder, 'modules')],
      });
      const listening = (): Record<string, unknown>[] =>
        clustered.logs.filter((line) => String(line.msg).startsWith('wharf listening'));
      const refusedReplacements = (): Record<string, unknown>[] =>
        clustered.logs.filter((line) => String(line.msg).startsWith('a replacement worker could not start'));
      try {
        await eventually(() => (listening().length >= 2 ? true : undefined), 'both workers to listen');
        const [first] = listening();
        assert.ok(first !== undefined && typeof first.pid === 'number');
        await writeFile(refuse, '');
        process.kill(first.pid, 'SIGKILL');
        const [refused] = await eventually(
          () => (refusedReplacements().length >= 1 ? refusedReplacements() : undefined),
          'a replacement to fail to start',
        );
        assert.equal(typeof refused?.retryInMs, 'number');
        // The other worker serves meanwhile, and the primary did not stop.
        const url = await createUpload(clustered.endpoint, { 'Upload-Length': 3 });
        assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-length'], '3');
        assert.equal(clustered.child.exitCode, null);
        await rm(refuse);
        const replacement = await eventually(() => listening()[2], 'a replacement to listen', 60_000);
        assert.equal(replacement.port, clustered.port);
      } finally {
        await clustered.stop();
        await rm(folder, { recursive: true, force: true });
      }
    });
  });
});
