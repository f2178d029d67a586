import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, octets, patchInTwoParts, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

let wharf: WharfProcess;
before(async () => {
  wharf = await startWharf();
});
after(async () => {
  await wharf.stop();
});

const idOf = (url: string): string => url.split('/').pop() ?? '';

async function patch(url: string, offset: number, body: string, headers: Record<string, string> = {}) {
  return send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': offset, ...headers }, body });
}

// Every test at once: each has uploads (or a server) of its own.
describe('protocol extensions', { concurrency: true }, () => {
  describe('creation-defer-length', () => {
    it('reports Upload-Defer-Length until a PATCH declares the length, which then cannot change', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Defer-Length': '1' });
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.headers['upload-defer-length'], '1');
      assert.equal(head.headers['upload-length'], undefined);
      assert.equal((await patch(url, 0, 'abc')).status, 204);
      const declared = await patch(url, 3, 'de', { 'Upload-Length': '5' });
      assert.equal(declared.status, 204);
      assert.equal(declared.headers['upload-offset'], '5');
      const done = await send('HEAD', url, { headers: tus });
      assert.equal(done.headers['upload-length'], '5');
      assert.equal(done.headers['upload-defer-length'], undefined);
      assert.equal((await send('GET', url)).text, 'abcde');
    });

    it('refuses a declared length below the offset or a changed length with 400', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Defer-Length': '1' });
      await patch(url, 0, 'abcd');
      assert.equal((await patch(url, 4, 'e', { 'Upload-Length': '2' })).status, 400);
      assert.equal((await patch(url, 4, '', { 'Upload-Length': '9' })).status, 204);
      assert.equal((await patch(url, 4, 'e', { 'Upload-Length': '10' })).status, 400);
      assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-offset'], '4');
    });

    it('a PATCH refused with 413 (its body longer than the Upload-Length it declares) leaves the length deferred', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Defer-Length': '1' });
      assert.equal((await patch(url, 0, 'abcd')).status, 204);
      const refused = await patch(url, 4, 'efgh', { 'Upload-Length': '6' });
      assert.equal(refused.status, 413, refused.text);
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(head.headers['upload-defer-length'], '1');
      assert.equal(head.headers['upload-length'], undefined);
      assert.equal(head.headers['upload-offset'], '4');
      // The client corrects its length, which the refused request must not have fixed.
      assert.equal((await patch(url, 4, 'efgh', { 'Upload-Length': '8' })).status, 204);
      assert.equal((await send('GET', url)).text, 'abcdefgh');
    });
  });

  describe('checksum', () => {
    const digest = (algorithm: string, text: string) => createHash(algorithm).update(text).digest('base64');

    for (const algorithm of ['md5', 'sha1', 'sha256', 'sha512']) {
      it(`accepts a matching ${algorithm} checksum`, async () => {
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
        const reply = await patch(url, 0, 'hello', {
          'Upload-Checksum': `${algorithm} ${digest(algorithm, 'hello')}`,
        });
        assert.equal(reply.status, 204);
        assert.equal(reply.headers['upload-offset'], '5');
      });
    }

    it('answers 460 on a mismatch, discards the chunk and leaves the offset untouched', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
      await patch(url, 0, 'hello');
      const reply = await patch(url, 5, 'world', { 'Upload-Checksum': `sha1 ${digest('sha1', 'WORLD')}` });
      assert.equal(reply.status, 460);
      assert.equal(reply.statusMessage, 'Checksum Mismatch');
      assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-offset'], '5');
      assert.equal(
        (await patch(url, 5, 'world', { 'Upload-Checksum': `sha1 ${digest('sha1', 'world')}` })).status,
        204,
      );
      assert.equal((await send('GET', url)).text, 'helloworld');
    });

    it('refuses an unsupported algorithm or a malformed header with 400 and stores nothing', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
      assert.equal((await patch(url, 0, 'hello', { 'Upload-Checksum': 'crc32 AAAAAA==' })).status, 400);
      assert.equal((await patch(url, 0, 'hello', { 'Upload-Checksum': 'sha1' })).status, 400);
      assert.equal((await patch(url, 0, 'hello', { 'Upload-Checksum': 'sha1 notbase64!' })).status, 400);
      assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-offset'], '0');
    });
  });

  describe('termination', () => {
    it('deletes the upload: 204, then 404, and its bytes and record are gone', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
      await patch(url, 0, 'he');
      const id = idOf(url);
      assert.ok((await readdir(wharf.dataDir)).includes(id));
      assert.equal((await send('DELETE', url, { headers: tus })).status, 204);
      assert.equal((await send('HEAD', url, { headers: tus })).status, 404);
      assert.equal((await patch(url, 2, 'llo')).status, 404);
      const left = await readdir(wharf.dataDir);
      assert.ok(!left.includes(id) && !left.includes(`${id}.info`));
    });
  });

  describe('concatenation', () => {
    it('builds a final upload from partials, in order', async () => {
      const first = await createUpload(wharf.endpoint, { 'Upload-Length': 3, 'Upload-Concat': 'partial' });
      const second = await createUpload(wharf.endpoint, { 'Upload-Length': 2, 'Upload-Concat': 'partial' });
      const third = await createUpload(wharf.endpoint, { 'Upload-Length': 3, 'Upload-Concat': 'partial' });
      await patch(first, 0, 'abc');
      await patch(second, 0, 'de');
      await patch(third, 0, 'abc');
      const concat = `final;${new URL(first).pathname} ${second} ${new URL(third).pathname}`;
      const reply = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Concat': concat, 'Upload-Metadata': 'filename YWxsLnR4dA==' },
      });
      assert.equal(reply.status, 201);
      const final = String(reply.headers.location);
      const head = await send('HEAD', final, { headers: tus });
      assert.equal(head.headers['upload-offset'], '8');
      assert.equal(head.headers['upload-length'], '8');
      assert.equal(head.headers['upload-concat'], concat);
      assert.equal(head.headers['upload-metadata'], 'filename YWxsLnR4dA==');
      const partialHead = await send('HEAD', first, { headers: tus });
      assert.equal(partialHead.headers['upload-concat'], 'partial');
      assert.equal((await send('GET', final)).text, 'abcdeabc');
      assert.equal((await patch(final, 8, 'x')).status, 403);
    });

    it('refuses Upload-Length on a final, non-partial parts, and unknown parts', async () => {
      const partial = await createUpload(wharf.endpoint, { 'Upload-Length': 1, 'Upload-Concat': 'partial' });
      await patch(partial, 0, 'a');
      const plain = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
      await patch(plain, 0, 'b');
      const withLength = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Concat': `final;${partial}`, 'Upload-Length': 1 },
      });
      assert.equal(withLength.status, 400);
      const notPartial = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Concat': `final;${plain}` },
      });
      assert.equal(notPartial.status, 400);
      const unknown = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Concat': `final;${wharf.endpoint}0f0f0f0f-0000-4000-8000-000000000000` },
      });
      assert.equal(unknown.status, 404);
      const malformed = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Concat': 'final;' },
      });
      assert.equal(malformed.status, 400);
    });

    it('with concatenation-unfinished, builds the final once its last partial finishes', async () => {
      const first = await createUpload(wharf.endpoint, { 'Upload-Length': 2, 'Upload-Concat': 'partial' });
      const second = await createUpload(wharf.endpoint, {
        'Upload-Defer-Length': '1',
        'Upload-Concat': 'partial',
      });
      const final = await createUpload(wharf.endpoint, { 'Upload-Concat': `final;${first} ${second}` });
      const pending = await send('HEAD', final, { headers: tus });
      assert.equal(pending.status, 200);
      assert.equal(pending.headers['upload-offset'], undefined);
      await patch(first, 0, '12');
      await patch(second, 0, '345', { 'Upload-Length': '3' });
      const head = await send('HEAD', final, { headers: tus });
      assert.equal(head.headers['upload-offset'], '5');
      assert.equal(head.headers['upload-length'], '5');
      assert.equal((await send('GET', final)).text, '12345');
    });
  });

  describe('getting (GET download)', () => {
    it('serves a finished upload with type, disposition, length and ranges', async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 10,
        'Upload-Metadata': `filename ${Buffer.from('report ü.txt').toString('base64')},filetype dGV4dC9wbGFpbg==`,
      });
      assert.equal((await send('GET', url)).status, 409);
      await patch(url, 0, '0123456789');
      const whole = await send('GET', url);
      assert.equal(whole.status, 200);
      assert.equal(whole.text, '0123456789');
      assert.equal(whole.headers['content-length'], '10');
      assert.equal(whole.headers['content-type'], 'text/plain');
      assert.equal(
        whole.headers['content-disposition'],
        `inline; filename="report _.txt"; filename*=UTF-8''report%20%C3%BC.txt`,
      );
      const range = await send('GET', url, { headers: { Range: 'bytes=2-4' } });
      assert.equal(range.status, 206);
      assert.equal(range.text, '234');
      assert.equal(range.headers['content-range'], 'bytes 2-4/10');
      const suffix = await send('GET', url, { headers: { Range: 'bytes=-3' } });
      assert.equal(suffix.text, '789');
      const open = await send('GET', url, { headers: { Range: 'bytes=8-' } });
      assert.equal(open.text, '89');
      const outside = await send('GET', url, { headers: { Range: 'bytes=10-20' } });
      assert.equal(outside.status, 416);
      assert.equal(outside.headers['content-range'], 'bytes */10');
    });

    it('a GET of an unfinished upload leaves the PATCH in progress alone (a HEAD makes it give way)', async () => {
      const body = Buffer.from('0123456789abcdefghij');
      /** Starts a PATCH, waits until its first half is stored, asks `method`, then ends the PATCH. */
      const patchAround = async (method: 'GET' | 'HEAD') => {
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': body.length });
        const inFlight = patchInTwoParts(url, body, 10);
        const file = path.join(wharf.dataDir, idOf(url));
        for (let attempt = 0; attempt < 500 && (await stat(file)).size < 10; attempt++) await sleep(10);
        const asked = await send(method, url, { headers: method === 'HEAD' ? tus : {} });
        const patched = await inFlight.finish().catch(() => 'cut');
        const offset = (await send('HEAD', url, { headers: tus })).headers['upload-offset'];
        return { asked: asked.status, patched, offset, url };
      };
      const get = await patchAround('GET');
      assert.equal(get.asked, 409);
      assert.equal(get.patched, 204);
      assert.equal(get.offset, '20');
      assert.equal((await send('GET', get.url)).text, body.toString());
      // The control: HEAD takes the upload's lock, so the PATCH stops where it was (the client resumes there).
      const head = await patchAround('HEAD');
      assert.equal(head.asked, 200);
      assert.notEqual(head.patched, 204);
      assert.equal(head.offset, '10');
    });

    it("answers 416 as a plain-text error, not labelled with the upload's type and file name", async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 4,
        'Upload-Metadata': `filename ${Buffer.from('report.pdf').toString('base64')},filetype ${Buffer.from('application/pdf').toString('base64')}`,
      });
      await patch(url, 0, '%PDF');
      const outside = await send('GET', url, { headers: { Range: 'bytes=10-' } });
      assert.equal(outside.status, 416);
      assert.equal(outside.headers['content-range'], 'bytes */4');
      assert.equal(outside.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(outside.headers['content-disposition'], undefined);
      assert.match(outside.text, /^ERR_RANGE_NOT_SATISFIABLE/);
      // The control: a satisfiable range is the upload's, with its type and disposition.
      const inside = await send('GET', url, { headers: { Range: 'bytes=1-' } });
      assert.equal(inside.status, 206);
      assert.equal(inside.headers['content-type'], 'application/pdf');
      assert.match(String(inside.headers['content-disposition']), /^inline; filename="report\.pdf"/);
      assert.equal(inside.text, 'PDF');
    });

    it('ignores an invalid range (last byte before the first), as RFC 9110 asks: 200 with the whole upload', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 4 });
      await patch(url, 0, 'wxyz');
      const backwards = await send('GET', url, { headers: { Range: 'bytes=3-1' } });
      assert.equal(backwards.status, 200);
      assert.equal(backwards.headers['content-range'], undefined);
      assert.equal(backwards.text, 'wxyz');
      // The control: a valid range past the end is unsatisfiable.
      assert.equal((await send('GET', url, { headers: { Range: 'bytes=4-5' } })).status, 416);
    });

    it('serves unknown or unsafe types as an attachment', async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 1,
        'Upload-Metadata': `filetype ${Buffer.from('text/html').toString('base64')}`,
      });
      await patch(url, 0, 'x');
      const reply = await send('GET', url);
      assert.equal(reply.headers['content-type'], 'text/html');
      assert.equal(reply.headers['content-disposition'], 'attachment');
      assert.equal(reply.headers['x-content-type-options'], 'nosniff');
    });
  });

  describe('expiration', () => {
    it('announces Upload-Expires, answers 410 once expired, and the sweep removes the upload', async () => {
      const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-expiry-'));
      // First without a sweep in reach, so the expired state can be seen; then with a fast sweep.
      const idle = await startWharf({
        dataDir,
        args: ['--upload-expiration', '1', '--expiration-sweep-interval', '3600'],
      });
      let url: string;
      let finished: string;
      try {
        const reply = await send('POST', idle.endpoint, { headers: { ...tus, 'Upload-Length': 5 } });
        assert.match(
          String(reply.headers['upload-expires']),
          /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
        );
        url = String(reply.headers.location);
        const written = await patch(url, 0, 'ab');
        assert.ok(written.headers['upload-expires']);
        finished = await createUpload(idle.endpoint, { 'Upload-Length': 1 });
        await patch(finished, 0, 'z');
        let status = 200;
        for (let attempt = 0; attempt < 100 && status === 200; attempt++) {
          await sleep(100);
          status = (await send('HEAD', url, { headers: tus })).status;
        }
        assert.equal(status, 410);
        assert.equal((await patch(url, 2, 'cde')).status, 410);
      } finally {
        await idle.stop();
      }
      const sweeping = await startWharf({
        dataDir,
        args: ['--upload-expiration', '1', '--expiration-sweep-interval', '1'],
      });
      try {
        const moved = (address: string) => address.replace(/^http:\/\/[^/]+/, sweeping.origin);
        let status = 410;
        for (let attempt = 0; attempt < 100 && status === 410; attempt++) {
          await sleep(100);
          status = (await send('HEAD', moved(url), { headers: tus })).status;
        }
        assert.equal(status, 404);
        // The record goes first (HEAD answers 404 from then on), the data file right after it.
        const dataFile = path.join(dataDir, idOf(url));
        for (
          let attempt = 0;
          attempt < 100 &&
          (await access(dataFile).then(
            () => true,
            () => false,
          ));
          attempt++
        ) {
          await sleep(50);
        }
        await assert.rejects(access(dataFile));
        assert.equal((await send('GET', moved(finished))).text, 'z', 'finished uploads never expire');
      } finally {
        await sweeping.stop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });

    it('an upload receiving a PATCH longer than --upload-expiration is not idle: the sweep leaves it alone', async () => {
      const wharf = await startWharf({
        args: ['--upload-expiration', '1', '--expiration-sweep-interval', '1'],
      });
      try {
        const pieces = 20;
        const piece = Buffer.alloc(100, 'p');
        // The control: an upload created with it and never written is swept meanwhile.
        const idle = await createUpload(wharf.endpoint, { 'Upload-Length': 1 });
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': pieces * piece.length });
        const body = Buffer.concat(Array.from({ length: pieces }, () => piece));
        const patching = httpRequest(url, {
          method: 'PATCH',
          headers: { ...tus, ...octets, 'Upload-Offset': '0', 'Content-Length': String(body.length) },
        });
        const answered = new Promise<number>((resolve, reject) => {
          patching.on('response', (response) => {
            response.resume();
            response.on('end', () => resolve(response.statusCode ?? 0));
          });
          patching.on('error', reject);
        });
        // The body trickles in over three times the expiration, and on until the control was swept.
        let written = 0;
        let idleStatus = 200;
        const last = body.length - piece.length;
        for (let round = 0; round < 300 && (written < last || idleStatus !== 404); round++) {
          if (written < last) {
            patching.write(body.subarray(written, written + piece.length));
            written += piece.length;
          }
          await sleep(150);
          idleStatus = (await send('HEAD', idle, { headers: tus })).status;
        }
        assert.equal(idleStatus, 404, 'the control upload was swept meanwhile');
        patching.end(body.subarray(written));
        assert.equal(await answered, 204);
        const head = await send('HEAD', url, { headers: tus });
        assert.equal(head.status, 200);
        assert.equal(head.headers['upload-offset'], String(body.length));
        assert.deepEqual((await send('GET', url)).body, body);
      } finally {
        await wharf.stop();
      }
    });

    it('with an expiration longer than a timer holds (60 days), a PATCH in flight writes its record only at its end', async () => {
      const wharf = await startWharf({ args: ['--upload-expiration', String(60 * 24 * 3600)] });
      try {
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
        const inFlight = patchInTwoParts(url, Buffer.from('0123456789'), 5);
        await sleep(500);
        assert.equal(await inFlight.finish(), 204);
        // One record version for the creation, one for the PATCH: no expiry written every millisecond meanwhile
        // (Node fires a timer of more than 2^31 - 1 ms after 1 ms).
        const lines = (await readFile(path.join(wharf.dataDir, `${idOf(url)}.info`), 'utf8'))
          .trim()
          .split('\n');
        const record = JSON.parse(lines.at(-1) ?? '{}') as { version: number; offset: number };
        assert.equal(record.offset, 10);
        assert.ok(record.version <= 3, `record version ${record.version}`);
      } finally {
        await wharf.stop();
      }
    });

    it('an upload the sweep removes leaves active_uploads and counts in wharf_expired_uploads_total', async () => {
      const wharf = await startWharf({
        args: ['--upload-expiration', '1', '--expiration-sweep-interval', '1'],
      });
      try {
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
        await patch(url, 0, 'ab');
        let status = 204;
        for (let attempt = 0; attempt < 100 && status !== 404; attempt++) {
          await sleep(100);
          status = (await send('HEAD', url, { headers: tus })).status;
        }
        assert.equal(status, 404);
        // HEAD answers 404 once the upload expired; the sweep that removes it and counts it may come a moment later.
        let metrics = new Set<string>();
        for (let attempt = 0; attempt < 100 && !metrics.has('wharf_expired_uploads_total 1'); attempt++) {
          if (attempt > 0) await sleep(100);
          metrics = new Set((await send('GET', `${wharf.origin}/metrics`)).text.split('\n'));
        }
        assert.ok(metrics.has('started_uploads 1'));
        assert.ok(metrics.has('active_uploads 0'));
        assert.ok(metrics.has('wharf_expired_uploads_total 1'));
      } finally {
        await wharf.stop();
      }
    });
  });
});
