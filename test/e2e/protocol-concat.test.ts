import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, octets, patchInTwoParts, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

// Issue 17, point 4: a final upload lists each partial of this endpoint once, within --max-file-size, and one
// that can never be built says so instead of waiting forever.

let wharf: WharfProcess;
before(async () => {
  wharf = await startWharf({ args: ['--max-file-size', '10', '--admin'] });
});
after(async () => {
  await wharf.stop();
});

const idOf = (url: string): string => url.split('/').pop() ?? '';

async function patch(url: string, offset: number, body: string, headers: Record<string, string> = {}) {
  return send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': offset, ...headers }, body });
}

async function partial(length: number | 'deferred', bytes?: string): Promise<string> {
  const url = await createUpload(wharf.endpoint, {
    'Upload-Concat': 'partial',
    ...(length === 'deferred' ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': length }),
  });
  if (bytes !== undefined) assert.equal((await patch(url, 0, bytes)).status, 204);
  return url;
}

async function postFinal(urls: readonly string[]) {
  return send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Concat': `final;${urls.join(' ')}` } });
}

async function adminView(url: string): Promise<{ failure: string | null; finished: boolean }> {
  const reply = await send('GET', `${wharf.origin}/admin/api/uploads/${idOf(url)}`);
  assert.equal(reply.status, 200, reply.text);
  return (JSON.parse(reply.text) as { upload: { failure: string | null; finished: boolean } }).upload;
}

/** Uploads (records) in the data folder: a refused final leaves none behind. */
async function recordCount(): Promise<number> {
  return (await readdir(wharf.dataDir)).filter((name) => name.endsWith('.info')).length;
}

describe('which partials a final may list', () => {
  it('refuses a partial listed twice (as a path and as a URL) with 400 ERR_CONCAT_DUPLICATE_PART', async () => {
    const a = await partial(2, 'ab');
    const b = await partial(1, 'c');
    const before = await recordCount();
    for (const list of [
      [a, b, a],
      [new URL(a).pathname, a],
      [`${a}/`, a],
    ]) {
      const reply = await postFinal(list);
      assert.equal(reply.status, 400, reply.text);
      assert.match(reply.text, /^ERR_CONCAT_DUPLICATE_PART: .*listed more than once/);
      assert.equal(reply.headers.location, undefined);
    }
    assert.equal(await recordCount(), before);
    // Positive control: each once.
    const good = await postFinal([a, new URL(b).pathname]);
    assert.equal(good.status, 201, good.text);
    assert.equal((await send('GET', String(good.headers.location))).text, 'abc');
  });

  it('refuses another host, port, scheme or path with 400 ERR_CONCAT_FOREIGN_URL', async () => {
    const a = await partial(1, 'a');
    const id = idOf(a);
    const before = await recordCount();
    const foreign = [
      `http://files.example.invalid/files/${id}`,
      `http://localhost:${wharf.port}/files/${id}`,
      `http://127.0.0.1:${wharf.port + 1}/files/${id}`,
      `https://127.0.0.1:${wharf.port}/files/${id}`,
      `//files.example.invalid/files/${id}`,
      `/other/${id}`,
      `/files/x/${id}`,
      `${wharf.origin}/admin/api/uploads/${id}`,
    ];
    for (const url of foreign) {
      const reply = await postFinal([url]);
      assert.equal(reply.status, 400, `${url}: ${reply.text}`);
      assert.match(reply.text, /^ERR_CONCAT_FOREIGN_URL: /, url);
    }
    assert.equal(await recordCount(), before);
    // Positive control: the Location Wharf gave, and the same path alone.
    for (const url of [a, `/files/${id}`]) assert.equal((await postFinal([url])).status, 201, url);
  });
});

describe('--max-file-size and a final', () => {
  it('is checked at creation over the lengths known, even while a partial is unfinished', async () => {
    const a = await partial(6);
    const b = await partial(6);
    const before = await recordCount();
    const reply = await postFinal([a, b, await partial('deferred')]);
    assert.equal(reply.status, 413, reply.text);
    assert.match(reply.text, /^ERR_MAX_SIZE_EXCEEDED/);
    assert.equal(await recordCount(), before + 1);
    // Positive control: within the limit the same kind of final is accepted.
    assert.equal((await postFinal([a, await partial('deferred')])).status, 201);
  });

  it('marks a waiting final failed (410 on HEAD and GET, reason in the admin API) once a deferred part exceeds it; nothing is copied', async () => {
    const a = await partial(6, 'abcdef');
    const b = await partial('deferred');
    const created = await postFinal([a, b]);
    assert.equal(created.status, 201, created.text);
    const final = String(created.headers.location);
    const waiting = await send('HEAD', final, { headers: tus });
    assert.equal(waiting.status, 200);
    assert.equal(waiting.headers['upload-offset'], undefined);
    // The partial itself fits (6 bytes); the final would be 12.
    assert.equal((await patch(b, 0, 'ghijkl', { 'Upload-Length': '6' })).status, 204);
    const head = await send('HEAD', final, { headers: tus });
    assert.equal(head.status, 410);
    assert.equal(head.headers['upload-offset'], undefined);
    assert.match(String(head.headers['upload-failed']), /add up to 12 bytes, more than the maximum of 10/);
    const get = await send('GET', final);
    assert.equal(get.status, 410);
    assert.match(get.text, /^ERR_CONCAT_FAILED: .*12 bytes/);
    const view = await adminView(final);
    assert.equal(view.finished, false);
    assert.match(String(view.failure), /more than the maximum of 10/);
    assert.equal((await stat(`${wharf.dataDir}/${idOf(final)}`)).size, 0);
    // The partial is untouched and still downloadable.
    assert.equal((await send('GET', b)).text, 'ghijkl');
  });
});

describe('a final whose partial disappears', () => {
  it('is marked failed with the reason (HEAD 410 Upload-Failed, admin API), not left unfinished', async () => {
    const a = await partial(2, 'ab');
    const b = await partial(3);
    const created = await postFinal([a, b]);
    assert.equal(created.status, 201, created.text);
    const final = String(created.headers.location);
    assert.equal((await send('HEAD', final, { headers: tus })).status, 200);
    assert.equal((await send('DELETE', b, { headers: tus })).status, 204);
    const head = await send('HEAD', final, { headers: tus });
    assert.equal(head.status, 410);
    assert.equal(head.headers['upload-failed'], `partial upload ${idOf(b)} no longer exists`);
    assert.equal((await send('GET', final)).status, 410);
    assert.equal((await adminView(final)).failure, `partial upload ${idOf(b)} no longer exists`);
    // A failed final can still be removed by its client.
    assert.equal((await send('DELETE', final, { headers: tus })).status, 204);
    assert.equal((await send('HEAD', final, { headers: tus })).status, 404);
  });
});

describe('a final waiting for its partials, with --upload-expiration', () => {
  it('lives as long as its partials do: it is built once they finish, however long after its creation', async () => {
    const expiring = await startWharf({
      args: ['--upload-expiration', '3', '--expiration-sweep-interval', '1'],
    });
    try {
      const post = (headers: Record<string, string | number>) => createUpload(expiring.endpoint, headers);
      const part = await post({ 'Upload-Length': 2, 'Upload-Concat': 'partial' });
      const final = await post({ 'Upload-Concat': `final;${part}` });
      // The control: a plain upload created after the final and never written, which expires.
      const control = await post({ 'Upload-Length': 1 });
      // The partial's client is still at work: its write keeps it alive 1.5 s past the control.
      await sleep(1500);
      assert.equal((await patch(part, 0, 'a')).status, 204);
      let controlStatus = 200;
      for (let attempt = 0; attempt < 100 && controlStatus === 200; attempt++) {
        await sleep(100);
        controlStatus = (await send('HEAD', control, { headers: tus })).status;
      }
      assert.ok(controlStatus === 410 || controlStatus === 404, `the control expired (${controlStatus})`);
      assert.equal((await send('HEAD', part, { headers: tus })).status, 200);
      const waiting = await send('HEAD', final, { headers: tus });
      assert.equal(waiting.status, 200, waiting.text);
      assert.equal(waiting.headers['upload-expires'], undefined);
      assert.equal((await patch(part, 1, 'b')).status, 204);
      const built = await send('GET', final);
      assert.equal(built.status, 200, built.text);
      assert.equal(built.text, 'ab');
    } finally {
      await expiring.stop();
    }
  });

  it('expires once it failed (its partial deleted): a failed final is swept like an abandoned upload', async () => {
    const expiring = await startWharf({
      args: ['--upload-expiration', '1', '--expiration-sweep-interval', '1'],
    });
    try {
      const part = await createUpload(expiring.endpoint, { 'Upload-Length': 2, 'Upload-Concat': 'partial' });
      const final = await createUpload(expiring.endpoint, { 'Upload-Concat': `final;${part}` });
      assert.equal((await send('DELETE', part, { headers: tus })).status, 204);
      const failed = await send('HEAD', final, { headers: tus });
      assert.equal(failed.status, 410);
      assert.equal(failed.headers['upload-failed'], `partial upload ${idOf(part)} no longer exists`);
      let status = 410;
      for (let attempt = 0; attempt < 100 && status !== 404; attempt++) {
        await sleep(100);
        status = (await send('HEAD', final, { headers: tus })).status;
      }
      assert.equal(status, 404);
      await assert.rejects(stat(`${expiring.dataDir}/${idOf(final)}`));
    } finally {
      await expiring.stop();
    }
  });
});

describe('a final created while its partial is being written (concatenation-unfinished)', () => {
  it('leaves the PATCH in flight alone, and is built when that PATCH completes the partial', async () => {
    // Within the shared server's --max-file-size of 10.
    const body = Buffer.from('01234abcde');
    const part = await partial(body.length);
    const inFlight = patchInTwoParts(part, body, 5);
    const file = `${wharf.dataDir}/${idOf(part)}`;
    for (let attempt = 0; attempt < 500 && (await stat(file)).size < 5; attempt++) await sleep(10);
    const created = await postFinal([part]);
    assert.equal(created.status, 201, created.text);
    const final = String(created.headers.location);
    assert.equal(await inFlight.finish(), 204);
    const head = await send('HEAD', final, { headers: tus });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-offset'], String(body.length));
    assert.equal((await send('GET', final)).text, body.toString());
  });
});
