import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hookSchemaErrors } from '../support/hook-payload-validator.ts';
import {
  type HookAnswer,
  HookReceiver,
  type ReceivedHook,
  requestOf,
  suiteReceiver,
  uploadOf,
} from '../support/hook-receiver.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { closeNow, listenOnLoopback } from '../support/loopback-server.ts';
import { selfSignedCertificate } from '../support/self-signed.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

function names(hooks: readonly ReceivedHook[]): string[] {
  return hooks.map((hook) => hook.name);
}

function idOf(url: string): string {
  return url.split('/').pop() ?? '';
}

function metadata(pairs: Record<string, string>): string {
  return Object.entries(pairs)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

async function patch(url: string, offset: number, body: string, extra: Record<string, string> = {}) {
  const reply = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': offset, ...extra },
    body,
  });
  assert.equal(reply.status, 204, reply.text);
  return reply;
}

/** Files in the data folder (data and info live there in these tests). */
/** Upload files in the data dir (the hook outbox's journal, `.wharf-outbox`, is not upload data). */
async function storedFiles(wharf: WharfProcess): Promise<string[]> {
  return (await readdir(wharf.dataDir, { recursive: true }))
    .filter((name) => !name.startsWith('.wharf-outbox'))
    .sort();
}

/** Every suite's receiver, closed once all suites are done (their servers stopped first). */
const receivers: HookReceiver[] = [];
after(() => Promise.all(receivers.map((receiver) => receiver.close())));

// The suites at once, each with its own receiver and servers; the tests of a suite go in turn.
describe('HTTP hooks', { concurrency: true }, () => {
  describe('HTTP hooks: which events fire, and when', { concurrency: false }, () => {
    const receiver = suiteReceiver(receivers);
    let wharf: WharfProcess;
    before(async () => {
      wharf = await startWharf({ args: ['--hooks-http-urls', receiver.url] });
    });
    after(() => wharf.stop());

    it('a chunked upload: pre-create, post-create, post-receive per chunk, then post-finish', async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 10,
        'Upload-Metadata': metadata({ filename: 'a.txt' }),
      });
      await patch(url, 0, 'hello');
      await patch(url, 5, 'world');
      const id = idOf(url);
      const hooks = await receiver.waitForNames(id, [
        'pre-create',
        'post-create',
        'post-receive',
        'post-finish',
      ]);
      assert.equal(hooks.length, 4, names(hooks).join());
      // pre-create is blocking: it is answered before the upload exists, so it comes first.
      assert.equal(hooks[0]?.name, 'pre-create');
      const preCreate = uploadOf(hooks[0]!.payload);
      assert.equal(preCreate.path, null, 'nothing is stored before pre-create');
      assert.equal(preCreate.offset, 0);
      const receive = uploadOf(hooks.find((hook) => hook.name === 'post-receive')!.payload);
      assert.equal(receive.offset, 5);
      const finish = uploadOf(hooks.find((hook) => hook.name === 'post-finish')!.payload);
      assert.equal(finish.offset, 10);
      assert.equal(finish.length, 10);
      assert.deepEqual(finish.metadata, { filename: 'a.txt' });
      assert.equal(await readFile(String(finish.path), 'utf8'), 'helloworld', 'path names the stored bytes');
      for (const hook of hooks) {
        assert.deepEqual(hookSchemaErrors('default', hook.payload), [], hook.name);
        assert.equal(hook.headers['content-type'], 'application/json');
        assert.equal(
          requestOf(hook.payload).method,
          hook.name === 'pre-create' || hook.name === 'post-create' ? 'POST' : 'PATCH',
        );
      }
      const keys = new Set(hooks.map((hook) => hook.headers['idempotency-key']));
      assert.equal(keys.size, 4, 'every event has its own Idempotency-Key');
    });

    it('a whole file in the creation request: pre-create then post-finish, no post-create', async () => {
      const reply = await send('POST', wharf.endpoint, {
        headers: { ...tus, ...octets, 'Upload-Length': 5 },
        body: 'whole',
      });
      assert.equal(reply.status, 201);
      const id = idOf(String(reply.headers.location));
      await receiver.waitForNames(id, ['pre-create', 'post-finish']);
      // A later upload's hooks arriving proves this one's are all in: the post queue is drained in order of arrival.
      const marker = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
      await receiver.waitForNames(idOf(marker), ['post-create']);
      assert.deepEqual(names(receiver.forUpload(id)), ['pre-create', 'post-finish']);
    });

    it('creation-with-upload of a first part only: post-create, then post-finish after the rest', async () => {
      const reply = await send('POST', wharf.endpoint, {
        headers: { ...tus, ...octets, 'Upload-Length': 8 },
        body: 'half',
      });
      assert.equal(reply.status, 201);
      const url = String(reply.headers.location);
      await patch(url, 4, 'done');
      const hooks = await receiver.waitForNames(idOf(url), ['pre-create', 'post-create', 'post-finish']);
      assert.deepEqual(names(hooks).sort(), ['post-create', 'post-finish', 'pre-create']);
      assert.equal(uploadOf(hooks.find((hook) => hook.name === 'post-create')!.payload).offset, 4);
    });

    it('a concatenation: the final upload gets pre-create and post-finish with its parts, never post-create', async () => {
      const first = await createUpload(wharf.endpoint, { 'Upload-Length': 3, 'Upload-Concat': 'partial' });
      const second = await createUpload(wharf.endpoint, { 'Upload-Length': 3, 'Upload-Concat': 'partial' });
      await patch(first, 0, 'abc');
      await patch(second, 0, 'def');
      const final = await createUpload(wharf.endpoint, {
        'Upload-Concat': `final;${new URL(first).pathname} ${new URL(second).pathname}`,
      });
      const hooks = await receiver.waitForNames(idOf(final), ['pre-create', 'post-finish']);
      const marker = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
      await receiver.waitForNames(idOf(marker), ['post-create']);
      assert.deepEqual(names(receiver.forUpload(idOf(final))), ['pre-create', 'post-finish']);
      const finish = uploadOf(hooks.find((hook) => hook.name === 'post-finish')!.payload);
      assert.equal(finish.is_final, true);
      assert.deepEqual(finish.parts, [idOf(first), idOf(second)]);
      assert.equal(await readFile(String(finish.path), 'utf8'), 'abcdef');
      const part = uploadOf(
        receiver.forUpload(idOf(first)).find((hook) => hook.name === 'post-finish')!.payload,
      );
      assert.equal(part.is_partial, true);
      assert.equal(part.parts, null);
    });

    it('a termination: pre-terminate, then post-terminate', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 4 });
      const deleted = await send('DELETE', url, { headers: tus });
      assert.equal(deleted.status, 204);
      const hooks = await receiver.waitForNames(idOf(url), ['pre-terminate', 'post-terminate']);
      assert.deepEqual(names(hooks), ['pre-create', 'post-create', 'pre-terminate', 'post-terminate']);
      assert.equal(requestOf(hooks[2]!.payload).method, 'DELETE');
    });
  });

  describe('HTTP hooks: formats', { concurrency: false }, () => {
    const receiver = suiteReceiver(receivers);
    for (const format of ['default', 'v2', 'tusd'] as const) {
      it(`--hooks-format ${format}: every payload of an upload and a termination matches the seed's schema`, async () => {
        const wharf = await startWharf({
          args: ['--hooks-http-urls', receiver.url, '--hooks-format', format],
        });
        try {
          const url = await createUpload(wharf.endpoint, {
            'Upload-Length': 6,
            'Upload-Metadata': metadata({ filename: 'f.bin', filetype: 'application/octet-stream' }),
          });
          await patch(url, 0, 'abc');
          await patch(url, 3, 'def');
          const terminated = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
          assert.equal((await send('DELETE', terminated, { headers: tus })).status, 204);
          const deferred = await createUpload(wharf.endpoint, { 'Upload-Defer-Length': 1 });
          await receiver.waitForNames(idOf(url), [
            'pre-create',
            'post-create',
            'post-receive',
            'post-finish',
          ]);
          await receiver.waitForNames(idOf(terminated), [
            'pre-create',
            'post-create',
            'pre-terminate',
            'post-terminate',
          ]);
          const hooks = [...receiver.forUpload(idOf(url)), ...receiver.forUpload(idOf(terminated))];
          assert.equal(hooks.length, 8);
          for (const hook of hooks) assert.deepEqual(hookSchemaErrors(format, hook.payload), [], hook.name);
          const request = requestOf(hooks[0]!.payload);
          // The seed's pydantic models type the length as int, but rustus sends null while it is deferred
          // (reference/rustus.md); Wharf does as rustus, so that payload is checked field by field instead.
          const [deferredCreate] = await receiver.waitForNames(idOf(deferred), ['pre-create']);
          const deferredUpload = uploadOf(deferredCreate!.payload);
          if (format === 'default') assert.equal(request.URI, '/files/');
          if (format === 'v2') assert.equal(request.uri, '/files/');
          if (format === 'tusd') {
            assert.equal(request.URI, '/files/');
            assert.deepEqual((request.Header as Record<string, string[]>)['tus-resumable'], ['1.0.0']);
            assert.equal(deferredUpload.Size, null);
            assert.equal(deferredUpload.SizeIsDeferred, true);
          } else {
            assert.equal((request.headers as Record<string, string>)['tus-resumable'], '1.0.0');
            const created = uploadOf(hooks[1]!.payload);
            assert.equal(typeof created.created_at, 'number');
            assert.equal(created.storage, 'file_storage');
            assert.equal(deferredUpload.length, null);
            assert.equal(deferredUpload.deferred_size, true);
          }
        } finally {
          await wharf.stop();
        }
      });
    }
  });

  describe('HTTP hooks: blocking answers', { concurrency: false }, () => {
    const receiver = suiteReceiver(receivers);
    let wharf: WharfProcess;
    before(async () => {
      wharf = await startWharf({ args: ['--hooks-http-urls', receiver.url] });
    });
    after(() => wharf.stop());

    it('a pre-create answered 403 refuses the upload with that answer and stores nothing', async () => {
      const before = await storedFiles(wharf);
      receiver.answer = (hook): HookAnswer =>
        hook.name === 'pre-create' ? { status: 403, body: 'quota exceeded' } : {};
      const reply = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 10 } });
      assert.equal(reply.status, 403);
      assert.equal(reply.text, 'quota exceeded');
      assert.equal(reply.headers.location, undefined);
      assert.deepEqual(await storedFiles(wharf), before);
    });

    it('a refused pre-terminate keeps the upload and its bytes', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 4 });
      await patch(url, 0, 'keep');
      receiver.answer = (hook): HookAnswer =>
        hook.name === 'pre-terminate' ? { status: 409, body: 'still being processed' } : {};
      const reply = await send('DELETE', url, { headers: tus });
      assert.equal(reply.status, 409);
      assert.equal(reply.text, 'still being processed');
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.status, 200);
      assert.equal(head.headers['upload-offset'], '4');
      assert.equal((await send('GET', url)).text, 'keep');
      const marker = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
      await receiver.waitForNames(idOf(marker), ['post-create']);
      assert.ok(!names(receiver.forUpload(idOf(url))).includes('post-terminate'));
    });

    it('a pre-create hook that does not answer in time refuses the upload with 504', async () => {
      receiver.answer = (hook): HookAnswer => (hook.name === 'pre-create' ? { delayMs: 3_000 } : {});
      const before = await storedFiles(wharf);
      const reply = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 10 } });
      assert.equal(reply.status, 504);
      assert.deepEqual(await storedFiles(wharf), before);
    });
  });

  describe('HTTP hooks: selection, headers and addresses', { concurrency: false }, () => {
    const receiver = suiteReceiver(receivers);
    it('--hooks lists the events that fire; the others are never called', async () => {
      const wharf = await startWharf({ args: ['--hooks-http-urls', receiver.url, '--hooks', 'post-finish'] });
      try {
        // A pre-create call would be refused: the upload succeeding proves it was never made.
        receiver.answer = (hook): HookAnswer => (hook.name === 'post-finish' ? {} : { status: 403 });
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 2 });
        await patch(url, 0, 'ok');
        const deleted = await send('DELETE', url, { headers: tus });
        assert.equal(deleted.status, 204);
        await receiver.waitForNames(idOf(url), ['post-finish']);
        const second = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
        await patch(second, 0, 'x');
        await receiver.waitForNames(idOf(second), ['post-finish']);
        assert.deepEqual(names(receiver.forUpload(idOf(url))), ['post-finish']);
      } finally {
        await wharf.stop();
      }
    });

    it('RUSTUS_HOOKS selects events as --hooks does', async () => {
      const wharf = await startWharf({
        args: ['--hooks-http-urls', receiver.url],
        env: { RUSTUS_HOOKS: 'pre-create' },
      });
      try {
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
        await patch(url, 0, 'x');
        await receiver.waitForNames(idOf(url), ['pre-create']);
        const second = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
        await receiver.waitForNames(idOf(second), ['pre-create']);
        assert.deepEqual(names(receiver.forUpload(idOf(url))), ['pre-create']);
      } finally {
        await wharf.stop();
      }
    });

    it('--hooks-http-proxy-headers copies the named client headers onto the hook request, and only those', async () => {
      const wharf = await startWharf({
        args: ['--hooks-http-urls', receiver.url, '--hooks-http-proxy-headers', 'Authorization,X-Trace-Id'],
      });
      try {
        const url = await createUpload(wharf.endpoint, {
          'Upload-Length': 1,
          Authorization: 'Bearer user-token',
          'X-Trace-Id': 'trace-42',
          'X-Other': 'not forwarded',
        });
        const [preCreate] = await receiver.waitForNames(idOf(url), ['pre-create']);
        assert.equal(preCreate?.headers.authorization, 'Bearer user-token');
        assert.equal(preCreate?.headers['x-trace-id'], 'trace-42');
        assert.equal(preCreate?.headers['x-other'], undefined);
        assert.equal(preCreate?.headers['hook-name'], 'pre-create');
      } finally {
        await wharf.stop();
      }
    });

    it('remote_addr ignores Forwarded and X-Forwarded-For without --behind-proxy', async () => {
      const wharf = await startWharf({ args: ['--hooks-http-urls', receiver.url] });
      try {
        const url = await createUpload(wharf.endpoint, {
          'Upload-Length': 1,
          'X-Forwarded-For': '127.0.0.7, 127.0.0.8',
          Forwarded: 'for=127.0.0.9',
        });
        const [preCreate] = await receiver.waitForNames(idOf(url), ['pre-create']);
        assert.equal(requestOf(preCreate!.payload).remote_addr, '127.0.0.1');
      } finally {
        await wharf.stop();
      }
    });

    it('remote_addr comes from Forwarded, else the first X-Forwarded-For entry, with --behind-proxy', async () => {
      const wharf = await startWharf({ args: ['--hooks-http-urls', receiver.url, '--behind-proxy'] });
      try {
        const both = await createUpload(wharf.endpoint, {
          'Upload-Length': 1,
          'X-Forwarded-For': '127.0.0.7, 127.0.0.8',
          Forwarded: 'for=127.0.0.9;proto=https',
        });
        const onlyXff = await createUpload(wharf.endpoint, {
          'Upload-Length': 1,
          'X-Forwarded-For': '127.0.0.7, 127.0.0.8',
        });
        const [fromForwarded] = await receiver.waitForNames(idOf(both), ['pre-create']);
        const [fromXff] = await receiver.waitForNames(idOf(onlyXff), ['pre-create']);
        assert.equal(requestOf(fromForwarded!.payload).remote_addr, '127.0.0.9');
        assert.equal(requestOf(fromXff!.payload).remote_addr, '127.0.0.7');
      } finally {
        await wharf.stop();
      }
    });

    it('a post hook target that takes up to 5 s does not delay the upload', async () => {
      const wharf = await startWharf({
        args: ['--hooks-http-urls', receiver.url, '--http-hook-timeout', '10'],
      });
      // The receiver holds every post hook's answer for 5 s, or until the test has seen the upload finish: a Wharf
      // that waited for the hook would get its answer after 5 s and finish the upload only then (caught below),
      // while a correct one costs no fixed wait.
      let release = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const fallback = setTimeout(release, 5_000);
      try {
        receiver.answer = (hook): HookAnswer => (hook.name.startsWith('post-') ? { until: released } : {});
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 6 });
        await patch(url, 0, 'abc');
        await receiver.waitForNames(idOf(url), ['post-create']);
        await patch(url, 3, 'def');
        // The client is done while the receiver still holds its post-create answer.
        const postCreate = receiver.forUpload(idOf(url)).find((hook) => hook.name === 'post-create');
        assert.equal(postCreate?.answered, false, 'the upload finished before the slow hook answered');
        assert.equal((await send('GET', url)).text, 'abcdef');
        release();
        await receiver.waitForNames(idOf(url), ['post-receive', 'post-finish']);
        await receiver.waitUntil(
          () => receiver.forUpload(idOf(url)).every((hook) => hook.answered),
          'slow answers',
        );
      } finally {
        clearTimeout(fallback);
        release();
        await wharf.stop();
      }
    });
  });

  describe('HTTP hooks: several targets', { concurrency: false }, () => {
    const receiver = suiteReceiver(receivers);
    it('calls each URL of --hooks-http-urls; the first refusal stops the later ones', async () => {
      const second = new HookReceiver();
      await second.start();
      const wharf = await startWharf({ args: ['--hooks-http-urls', `${receiver.url},${second.url}`] });
      try {
        const accepted = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
        await receiver.waitForNames(idOf(accepted), ['pre-create', 'post-create']);
        await second.waitForNames(idOf(accepted), ['pre-create', 'post-create']);
        receiver.answer = (hook): HookAnswer =>
          hook.name === 'pre-create' ? { status: 401, body: 'who are you' } : {};
        const refused = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 1 } });
        assert.equal(refused.status, 401);
        assert.equal(refused.text, 'who are you');
        const preCreates = second.received.filter((hook) => hook.name === 'pre-create');
        assert.equal(preCreates.length, 1, 'the second target was not asked after the first refused');
      } finally {
        await wharf.stop();
        await second.close();
      }
    });
  });

  describe('HTTP hooks: an https target', { concurrency: false }, () => {
    it('posts the events over TLS, a refusal reaching the client (node:https loads on the first https hook)', async () => {
      // A self-signed certificate for 127.0.0.1, which the wharf process trusts through NODE_EXTRA_CA_CERTS.
      const folder = await mkdtemp(path.join(tmpdir(), 'wharf-https-hook-'));
      const { key, cert, certFile } = await selfSignedCertificate(folder);
      const received: { name: string; secure: boolean; id: string }[] = [];
      const server = createHttpsServer({ key, cert }, (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          const name = String(req.headers['hook-name'] ?? '');
          const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          received.push({ name, secure: 'encrypted' in req.socket, id: String(uploadOf(payload).id) });
          const refuse = name === 'pre-create' && received.filter((hook) => hook.name === name).length > 1;
          res
            .writeHead(refuse ? 403 : 200, { 'Content-Type': 'text/plain' })
            .end(refuse ? 'not over TLS' : '');
        });
      });
      const port = await listenOnLoopback(server);
      const wharf = await startWharf({
        args: ['--hooks-http-urls', `https://127.0.0.1:${port}/hooks`],
        env: { NODE_EXTRA_CA_CERTS: certFile },
      });
      try {
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
        const deadline = Date.now() + 15_000;
        while (!received.some((hook) => hook.name === 'post-create') && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.deepEqual(
          received.map((hook) => hook.name),
          ['pre-create', 'post-create'],
        );
        assert.ok(received.every((hook) => hook.secure));
        assert.equal(received[1]?.id, idOf(url));
        const refused = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 1 } });
        assert.equal(refused.status, 403);
        assert.equal(refused.text, 'not over TLS');
      } finally {
        await wharf.stop();
        await closeNow(server);
        await rm(folder, { recursive: true, force: true });
      }
    });
  });
});
