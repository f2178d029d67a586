import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HookReceiver, uploadOf } from '../support/hook-receiver.ts';
import { createUpload, octets, send, sendRaw, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

// Issue 17, point 3: the status a finished upload, an odd metadata key or a short digest answers.

let wharf: WharfProcess;
let receiver: HookReceiver;
before(async () => {
  receiver = new HookReceiver();
  await receiver.start();
  wharf = await startWharf({
    args: ['--admin', '--hooks-http-urls', receiver.url, '--hooks', 'post-create'],
  });
});
after(async () => {
  await wharf.stop();
  await receiver.close();
});

const idOf = (url: string): string => url.split('/').pop() ?? '';

/** Own string-valued keys of a parsed JSON object, sorted; inherited members do not count. */
function ownEntries(object: object): [string, unknown][] {
  return Object.keys(object)
    .sort()
    .map((key) => [key, (object as Record<string, unknown>)[key]]);
}

async function patch(url: string, offset: number, body: string | readonly Buffer[], headers = {}) {
  return send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': offset, ...headers }, body });
}

describe('a PATCH to a finished upload', () => {
  it('answers 409 with the offset to another offset or a body, 204 to an empty PATCH at its length', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
    assert.equal((await patch(url, 0, 'hello')).status, 204);
    const atZero = await patch(url, 0, 'HELLO');
    assert.equal(atZero.status, 409, atZero.text);
    assert.match(atZero.text, /^ERR_MISMATCHED_OFFSET/);
    assert.equal(atZero.headers['upload-offset'], '5');
    const withBody = await patch(url, 5, 'more');
    assert.equal(withBody.status, 409, withBody.text);
    assert.match(withBody.text, /^ERR_UPLOAD_ALREADY_COMPLETE/);
    assert.equal(withBody.headers['upload-offset'], '5');
    const chunked = await patch(url, 5, [Buffer.from('more')]);
    assert.equal(chunked.status, 409, chunked.text);
    assert.match(chunked.text, /^ERR_UPLOAD_ALREADY_COMPLETE/);
    // What clients send to confirm the end (tus-js-client's empty last PATCH with the length) still succeeds.
    const empty = await patch(url, 5, '', { 'Upload-Length': '5' });
    assert.equal(empty.status, 204);
    assert.equal(empty.headers['upload-offset'], '5');
    assert.equal((await patch(url, 5, '', { 'Upload-Length': '6' })).status, 400);
    assert.equal((await send('GET', url)).text, 'hello');
  });

  it('lets at most one of 20 concurrent PATCHes with different bodies succeed, storing its body whole; the others get 409', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 4 });
    const bodies = Array.from({ length: 20 }, (_, index) => String(index).padStart(4, 'x'));
    const replies = await Promise.all(bodies.map((body) => patch(url, 0, body)));
    const statuses = replies.map((reply) => reply.status);
    const winners = replies.flatMap((reply, index) => (reply.status === 204 ? [bodies[index]] : []));
    // A PATCH that took the lock over from a slower one ends that one (400, bytes kept): under load the one whose
    // bytes completed the upload may be such a PATCH, so there is at most one 204, and none may say 204 without
    // its bytes being the upload.
    assert.ok(winners.length <= 1, `statuses: ${statuses.join(',')}`);
    assert.ok(statuses.includes(409), `statuses: ${statuses.join(',')}`);
    assert.ok(
      statuses.every((status) => status === 204 || status === 409 || status === 400),
      statuses.join(','),
    );
    const stored = (await send('GET', url)).text;
    assert.ok(bodies.includes(stored), `the upload is one PATCH's body, not a mix: ${stored}`);
    if (winners.length === 1) assert.equal(stored, winners[0]);
  });
});

describe('Upload-Metadata keys', () => {
  const refused: [string, string][] = [
    // Node's parser already refuses control characters in a header; a tab and bytes above ASCII reach Wharf.
    ['a tab', 'a\tb YQ=='],
    ['a byte above ASCII', 'caf\u00e9 YQ=='],
    ['a non-Latin letter', '\u0444\u0430\u0439\u043b YQ=='],
  ];
  for (const [what, header] of refused) {
    it(`refuses a key with ${what}: 400 ERR_INVALID_METADATA_KEY, nothing created`, async () => {
      const raw = await sendRaw(
        wharf.port,
        `POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 1\r\nUpload-Metadata: ${header}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(raw, /^HTTP\/1\.1 400 /, raw);
      assert.match(raw, /ERR_INVALID_METADATA_KEY/);
      assert.doesNotMatch(raw, /Location:/i);
    });
  }

  it('keeps __proto__, constructor and friends as plain keys on HEAD, GET, the admin API and hooks', async () => {
    const header = '__proto__ eA==,constructor eQ==,toString eg==,hasOwnProperty,filename YS50eHQ=';
    const expected = [
      ['__proto__', 'x'],
      ['constructor', 'y'],
      ['filename', 'a.txt'],
      ['hasOwnProperty', ''],
      ['toString', 'z'],
    ];
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 1, 'Upload-Metadata': header });
    assert.equal((await patch(url, 0, 'a')).status, 204);
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.headers['upload-metadata'], header);
    const get = await send('GET', url);
    assert.equal(get.text, 'a');
    assert.match(String(get.headers['content-disposition']), /filename="a\.txt"/);
    const admin = await send('GET', `${wharf.origin}/admin/api/uploads/${idOf(url)}`);
    assert.equal(admin.status, 200, admin.text);
    // JSON.parse keeps a "__proto__" member as an own key (it defines, not assigns).
    assert.deepEqual(
      ownEntries((JSON.parse(admin.text) as { upload: { metadata: object } }).upload.metadata),
      expected,
    );
    await receiver.waitForNames(idOf(url), ['post-create']);
    const [created] = receiver.forUpload(idOf(url));
    assert.deepEqual(ownEntries((uploadOf(created?.payload ?? {}).metadata ?? {}) as object), expected);
    assert.equal(uploadOf(created?.payload ?? {}).id, idOf(url));
  });
});

describe('a hook condition on a metadata key the client did not send', () => {
  it('never matches constructor or toString inherited from Object (the record has no prototype)', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-proto-keys-'));
    const named = new HookReceiver();
    await named.start();
    await writeFile(
      path.join(scratch, 'wharf.yaml'),
      `hooks:
  keyed:
    transport: http
    url: ${named.url}
endpoints:
  - path: /files
    hooks:
      - { hook: keyed, events: [post-finish], when: { metadata.constructor: "*" } }
      - { hook: keyed, events: [post-finish], when: { metadata.toString: "*" } }
`,
    );
    const keyed = await startWharf({ args: ['--config', path.join(scratch, 'wharf.yaml')] });
    try {
      const plain = await createUpload(keyed.endpoint, { 'Upload-Length': 1, 'Upload-Metadata': 'a YQ==' });
      assert.equal((await patch(plain, 0, 'a')).status, 204);
      // Positive control, sent after: an upload that does carry the key fires the binding once.
      const carrying = await createUpload(keyed.endpoint, {
        'Upload-Length': 1,
        'Upload-Metadata': 'constructor eQ==',
      });
      assert.equal((await patch(carrying, 0, 'b')).status, 204);
      await named.waitForNames(idOf(carrying), ['post-finish']);
      assert.deepEqual(
        named.received.map((hook) => uploadOf(hook.payload).id),
        [idOf(carrying)],
      );
    } finally {
      await keyed.stop();
      await named.close();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});

describe('Upload-Checksum with a digest of the wrong length', () => {
  for (const [algorithm, digest] of [
    ['sha1', Buffer.alloc(16).toString('base64')],
    ['md5', createHash('sha1').update('hello').digest('base64')],
    ['sha256', 'AAAA'],
  ] as const) {
    it(`${algorithm}: answers 460, discards the chunk, keeps the offset`, async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
      assert.equal((await patch(url, 0, 'hello')).status, 204);
      const reply = await patch(url, 5, 'world', { 'Upload-Checksum': `${algorithm} ${digest}` });
      assert.equal(reply.status, 460, reply.text);
      assert.match(reply.text, /^ERR_CHECKSUM_MISMATCH/);
      assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-offset'], '5');
      assert.equal((await readFile(`${wharf.dataDir}/${idOf(url)}`)).toString(), 'hello');
      // Positive control: the right digest is accepted.
      const right = createHash(algorithm).update('world').digest('base64');
      assert.equal(
        (await patch(url, 5, 'world', { 'Upload-Checksum': `${algorithm} ${right}` })).status,
        204,
      );
      assert.equal((await send('GET', url)).text, 'helloworld');
    });
  }
});

describe('a HEAD that waits longer than --lock-timeout for a busy upload', () => {
  it('answers 423 Locked, which tus clients retry (any other failure makes tus-js-client start the upload again)', async () => {
    // The lock is held by a DELETE whose pre-terminate hook takes 3 s; the HEAD waits 1 s at most.
    const hooks = await mkdtemp(path.join(tmpdir(), 'wharf-slow-hook-'));
    await writeFile(path.join(hooks, 'pre-terminate'), '#!/bin/sh\nsleep 3\n', { mode: 0o755 });
    const busy = await startWharf({
      args: ['--lock-timeout', '1', '--hooks-dir', hooks, '--hooks', 'pre-terminate'],
    });
    try {
      const url = await createUpload(busy.endpoint, { 'Upload-Length': 4 });
      const deleting = send('DELETE', url, { headers: tus });
      await sleep(300);
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.status, 423);
      assert.equal(head.headers['retry-after'], '1');
      // Any other request on the busy upload keeps its 503 (only HEAD needs the tus-js-client exception).
      const patched = await patch(url, 0, 'ab');
      assert.equal(patched.status, 503, patched.text);
      assert.match(patched.text, /^ERR_LOCK_TIMEOUT/);
      assert.equal((await deleting).status, 204);
    } finally {
      await busy.stop();
      await rm(hooks, { recursive: true, force: true });
    }
  });
});
