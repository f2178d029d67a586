/**
 * "Resumable Uploads for HTTP" (draft-ietf-httpbis-resumable-upload) on the wire, with raw sockets, against the
 * real `wharf` process. Section names are the draft's (editor's copy, interop version 8); older interop versions
 * are named where they differ. The draft text is not quoted beyond short clause references.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { HookReceiver, requestOf } from '../support/hook-receiver.ts';
import { send } from '../support/http.ts';
import { chunked, exchange, pathOf, problemBase, problemOf, rawHead } from '../support/ietf.ts';
import { RawConnection } from '../support/raw-http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const maxSize = 1_000_000;
const lifetime = 3600;
let wharf: WharfProcess;
const receiver = new HookReceiver();

before(async () => {
  await receiver.start();
  wharf = await startWharf({
    args: [
      '--max-file-size',
      String(maxSize),
      '--upload-expiration',
      String(lifetime),
      '--admin',
      '--hooks-http-urls',
      receiver.url,
      '--hooks',
      'pre-create,post-create,post-receive,post-finish,post-terminate',
    ],
  });
});
after(async () => {
  await wharf.stop();
  await receiver.close();
});

/** The request header that says "upload is complete" in an interop version (3 spelled it inversely). */
function completeHeader(version: number, complete: boolean): Record<string, string> {
  return version === 3
    ? { 'Upload-Incomplete': complete ? '?0' : '?1' }
    : { 'Upload-Complete': complete ? '?1' : '?0' };
}

function completeIn(version: number, headers: Readonly<Record<string, string>>): boolean | undefined {
  const value = version === 3 ? headers['upload-incomplete'] : headers['upload-complete'];
  if (value === undefined) return undefined;
  return version === 3 ? value === '?0' : value === '?1';
}

/** The Upload-Limit Wharf sends in an interop version with these flags (lifetime rounded up to seconds). */
function limitPattern(version: number): RegExp {
  const key = version >= 7 ? 'max-age' : 'expires';
  return new RegExp(`^max-size=${maxSize}, ${key}=(\\d+)$`);
}

function appendHeaders(version: number, offset: number, complete: boolean): Record<string, string | number> {
  return {
    'Upload-Draft-Interop-Version': version,
    'Upload-Offset': offset,
    ...completeHeader(version, complete),
    ...(version >= 6 ? { 'Content-Type': 'application/partial-upload' } : {}),
  };
}

async function createIncomplete(version: number, body: string, length?: number): Promise<string> {
  const response = await exchange(
    wharf.port,
    'POST',
    '/files',
    {
      'Upload-Draft-Interop-Version': version,
      ...completeHeader(version, false),
      ...(length !== undefined ? { 'Upload-Length': length } : {}),
    },
    body,
  );
  assert.equal(response.status, 201, response.body.toString());
  return pathOf(response.headers.location);
}

async function stored(uploadPath: string): Promise<Buffer> {
  return readFile(path.join(wharf.dataDir, path.basename(uploadPath)));
}

describe('IETF draft: upload creation ("Upload Creation", "104 (Upload Resumption Supported)")', () => {
  for (const version of [3, 4, 5, 6, 7, 8]) {
    test(`interop ${version}: an incomplete creation gets 104 with Location (and Upload-Limit from interop 6), then 201 with the same Location`, async () => {
      const response = await exchange(
        wharf.port,
        'POST',
        '/files',
        { 'Upload-Draft-Interop-Version': version, ...completeHeader(version, false), 'Upload-Length': 11 },
        'hello',
      );
      assert.equal(response.interim.length, 1, 'one interim response');
      const [interim] = response.interim;
      assert.equal(interim?.status, 104);
      assert.equal(interim?.reason, 'Upload Resumption Supported');
      // Draft Version Identification: the server MUST echo the interop version on the 104.
      assert.equal(interim?.headers['upload-draft-interop-version'], String(version));
      assert.match(String(interim?.headers.location), /^http:\/\/127\.0\.0\.1(?::\d+)?\/files\/[\w-]+$/);
      if (version >= 6) assert.match(String(interim?.headers['upload-limit']), limitPattern(version));
      else assert.equal(interim?.headers['upload-limit'], undefined);
      assert.equal(response.status, 201);
      // "Upload Creation", server behaviour: every Location of one request is identical.
      assert.equal(response.headers.location, interim?.headers.location);
      assert.equal(completeIn(version, response.headers), false);
      assert.equal(response.headers['upload-offset'], '5');
      assert.equal(response.headers['tus-resumable'], undefined, 'a draft answer is not a tus answer');
      if (version >= 6) assert.match(String(response.headers['upload-limit']), limitPattern(version));
      assert.deepEqual(await stored(pathOf(response.headers.location)), Buffer.from('hello'));
    });
  }

  test('the 104 arrives before a byte of the body is sent, and 100 Continue still follows it (section 104)', async () => {
    const connection = await RawConnection.open(wharf.port);
    try {
      connection.write(
        rawHead('POST', '/files', {
          'Upload-Draft-Interop-Version': 8,
          'Upload-Complete': '?1',
          'Content-Length': 6,
          Expect: '100-continue',
        }),
      );
      const first = await connection.readInterim();
      assert.equal(first.status, 104);
      const location = first.headers.location;
      assert.ok(location);
      // "the server MUST NOT omit the 100 (Continue) response because it has sent" a 104.
      const second = await connection.readInterim();
      assert.equal(second.status, 100);
      // The upload exists now, before its body: a download on another connection finds it, unfinished (a HEAD
      // would take its lock and end the creation, see "Concurrency" below).
      const early = await send('GET', `${wharf.origin}${pathOf(location)}`);
      assert.equal(early.status, 409, early.text);
      assert.match(early.text, /^ERR_NOT_DOWNLOADABLE/);
      connection.write('abcdef');
      const final = await connection.read();
      assert.equal(final.status, 201);
      assert.equal(final.headers['upload-complete'], '?1');
      assert.equal(final.headers.location, location);
      assert.deepEqual(await stored(pathOf(location)), Buffer.from('abcdef'));
    } finally {
      connection.close();
    }
  });

  test('a complete creation (Upload-Complete: ?1) records Content-Length as the length ("Length" 1) and finishes', async () => {
    const response = await exchange(
      wharf.port,
      'POST',
      '/files',
      {
        'Upload-Draft-Interop-Version': 8,
        'Upload-Complete': '?1',
        'Content-Type': 'text/plain',
        'Content-Disposition': `attachment; filename*=UTF-8''s%C5%82o%C5%84ce.txt`,
      },
      'whole file',
    );
    assert.equal(response.status, 201);
    assert.equal(response.headers['upload-complete'], '?1');
    assert.equal(response.headers['upload-length'], '10');
    // Visible to tus 1.0 and downloadable: one upload, whichever protocol created it.
    const tusHead = await send('HEAD', `${wharf.origin}${pathOf(response.headers.location)}`, {
      headers: { 'Tus-Resumable': '1.0.0' },
    });
    assert.equal(tusHead.headers['upload-offset'], '10');
    assert.equal(tusHead.headers['upload-length'], '10');
    const download = await send('GET', `${wharf.origin}${pathOf(response.headers.location)}`);
    assert.equal(download.text, 'whole file');
    assert.equal(download.headers['content-type'], 'text/plain');
    assert.match(String(download.headers['content-disposition']), /filename\*=UTF-8''s%C5%82o%C5%84ce\.txt/);
  });

  test('a complete creation with a chunked body and no length takes its length from the end of the body', async () => {
    const body = chunked([Buffer.from('one '), Buffer.from('two '), Buffer.from('three')]);
    const connection = await RawConnection.open(wharf.port);
    try {
      connection.write(
        Buffer.concat([
          Buffer.from(
            rawHead('PUT', '/files', {
              'Upload-Draft-Interop-Version': 8,
              'Upload-Complete': '?1',
              'Transfer-Encoding': 'chunked',
            }),
          ),
          body,
        ]),
      );
      const response = await connection.read();
      assert.equal(response.status, 201, response.body.toString());
      assert.equal(response.interim[0]?.status, 104);
      assert.equal(response.headers['upload-complete'], '?1');
      assert.equal(response.headers['upload-length'], '13');
      assert.deepEqual(await stored(pathOf(response.headers.location)), Buffer.from('one two three'));
    } finally {
      connection.close();
    }
  });

  test('a complete creation without any body framing has no content (RFC 9112 6.3): an empty upload, or an inconsistent length', async () => {
    /** A POST with neither Content-Length nor Transfer-Encoding: its body is empty, as with Content-Length: 0. */
    const unframed = async (headers: Record<string, string | number>) => {
      const connection = await RawConnection.open(wharf.port);
      try {
        connection.write(
          Buffer.from(rawHead('POST', '/files', { 'Upload-Draft-Interop-Version': 8, ...headers })),
        );
        return await connection.read();
      } finally {
        connection.close();
      }
    };
    const empty = await unframed({ 'Upload-Complete': '?1' });
    assert.equal(empty.status, 201, empty.body.toString());
    assert.equal(empty.headers['upload-complete'], '?1');
    assert.equal(empty.headers['upload-length'], '0');
    assert.deepEqual(await stored(pathOf(empty.headers.location)), Buffer.alloc(0));
    // Upload-Length promises 5 bytes the (empty) content cannot bring: refused before any upload exists.
    const short = await unframed({ 'Upload-Complete': '?1', 'Upload-Length': 5 });
    assert.equal(short.status, 400, short.body.toString());
    assert.equal(problemOf(short).type, `${problemBase}inconsistent-upload-length`);
    assert.equal(short.interim.length, 0, 'no upload was created, so no 104');
  });

  test('Upload-Length and Content-Length with Upload-Complete: ?1 must match ("Length"; problem inconsistent-upload-length)', async () => {
    const response = await exchange(
      wharf.port,
      'POST',
      '/files',
      { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?1', 'Upload-Length': 20 },
      'only ten b',
    );
    assert.equal(response.status, 400);
    assert.equal(response.interim.length, 0, 'no upload was created, so no 104');
    assert.equal(problemOf(response).type, `${problemBase}inconsistent-upload-length`);
    assert.equal(response.headers['upload-complete'], '?0');
  });

  test('a creation without Upload-Complete is refused (400), naming the field', async () => {
    const response = await exchange(wharf.port, 'POST', '/files', { 'Upload-Draft-Interop-Version': 8 }, 'x');
    assert.equal(response.status, 400);
    assert.match(response.body.toString(), /^ERR_IETF_UPLOAD_COMPLETE_REQUIRED/);
  });

  test('a length above --max-file-size is refused with 413 carrying Upload-Limit ("Limits")', async () => {
    const response = await exchange(wharf.port, 'POST', '/files', {
      'Upload-Draft-Interop-Version': 8,
      'Upload-Complete': '?0',
      'Upload-Length': maxSize + 1,
    });
    assert.equal(response.status, 413);
    assert.match(String(response.headers['upload-limit']), /^max-size=1000000, max-age=3600$/);
  });
});

describe('IETF draft: offset retrieval, append, cancellation', () => {
  test('HEAD answers Upload-Offset, Upload-Complete, Upload-Length, Upload-Limit and no-store ("Offset Retrieval")', async () => {
    const known = await createIncomplete(8, 'abc', 9);
    const head = await exchange(wharf.port, 'HEAD', known, { 'Upload-Draft-Interop-Version': 8 });
    assert.equal(head.status, 204);
    assert.equal(head.headers['upload-offset'], '3');
    assert.equal(head.headers['upload-complete'], '?0');
    assert.equal(head.headers['upload-length'], '9');
    assert.match(String(head.headers['upload-limit']), limitPattern(8));
    assert.equal(head.headers['cache-control'], 'no-store');
    // "MUST include the length ... unless the client has not supplied one".
    const unknown = await createIncomplete(8, 'abc');
    const headUnknown = await exchange(wharf.port, 'HEAD', unknown, { 'Upload-Draft-Interop-Version': 8 });
    assert.equal(headUnknown.headers['upload-offset'], '3');
    assert.equal(headUnknown.headers['upload-length'], undefined);
  });

  for (const version of [5, 6, 7, 8]) {
    test(`interop ${version}: appends, then completes with Upload-Complete: ?1 ("Upload Append")`, async () => {
      const upload = await createIncomplete(version, 'part1-');
      const middle = await exchange(wharf.port, 'PATCH', upload, appendHeaders(version, 6, false), 'part2-');
      assert.equal(middle.status, 204, middle.body.toString());
      assert.equal(middle.headers['upload-offset'], '12');
      assert.equal(middle.headers['upload-complete'], '?0');
      const last = await exchange(wharf.port, 'PATCH', upload, appendHeaders(version, 12, true), 'end');
      assert.equal(last.status, 204);
      assert.equal(last.headers['upload-complete'], '?1');
      assert.equal(last.headers['upload-offset'], '15');
      const head = await exchange(wharf.port, 'HEAD', upload, { 'Upload-Draft-Interop-Version': version });
      assert.equal(head.headers['upload-complete'], '?1');
      assert.equal(head.headers['upload-length'], '15');
      assert.equal((await stored(upload)).toString(), 'part1-part2-end');
    });
  }

  test('interop 6 on: an append that is not application/partial-upload gets 415; interop 5 needs no type', async () => {
    const upload = await createIncomplete(6, 'a');
    const wrong = await exchange(
      wharf.port,
      'PATCH',
      upload,
      { ...appendHeaders(6, 1, false), 'Content-Type': 'application/offset+octet-stream' },
      'b',
    );
    assert.equal(wrong.status, 415);
    assert.match(wrong.body.toString(), /^ERR_IETF_PARTIAL_UPLOAD_TYPE/);
    const old = await exchange(wharf.port, 'PATCH', upload, appendHeaders(5, 1, false), 'b');
    assert.equal(old.status, 204, 'positive control: interop 5 appends without Content-Type');
    assert.equal((await stored(upload)).toString(), 'ab');
  });

  test('a mismatched offset gets 409 with the right Upload-Offset and problem mismatching-upload-offset', async () => {
    const upload = await createIncomplete(8, 'abcd');
    const response = await exchange(wharf.port, 'PATCH', upload, appendHeaders(8, 2, false), 'XY');
    assert.equal(response.status, 409);
    assert.equal(response.headers['upload-offset'], '4');
    assert.equal(response.headers['upload-complete'], '?0');
    assert.deepEqual(
      { ...problemOf(response), title: undefined },
      {
        type: `${problemBase}mismatching-upload-offset`,
        title: undefined,
        'expected-offset': 4,
        'provided-offset': 2,
      },
    );
    assert.equal((await stored(upload)).toString(), 'abcd', 'nothing was appended');
  });

  test('an append to a completed upload: interop 7 answers 400 completed-upload, interop 8 inconsistent-upload-length', async () => {
    const upload = await createIncomplete(8, 'done');
    const finish = await exchange(wharf.port, 'PATCH', upload, appendHeaders(8, 4, true), '');
    assert.equal(finish.status, 204);
    assert.equal(finish.headers['upload-complete'], '?1');
    const v7 = await exchange(wharf.port, 'PATCH', upload, appendHeaders(7, 4, false), 'more');
    assert.equal(v7.status, 400);
    assert.equal(problemOf(v7).type, `${problemBase}completed-upload`);
    const v8 = await exchange(wharf.port, 'PATCH', upload, appendHeaders(8, 4, true), 'more');
    assert.equal(v8.status, 400);
    assert.equal(problemOf(v8).type, `${problemBase}inconsistent-upload-length`);
    // The newest text lets a valid empty append to a completed upload replay the final answer.
    const replay = await exchange(wharf.port, 'PATCH', upload, appendHeaders(8, 4, true), '');
    assert.equal(replay.status, 204);
    assert.equal(replay.headers['upload-complete'], '?1');
    assert.equal((await stored(upload)).toString(), 'done');
  });

  test('an append whose Upload-Length contradicts the known length is inconsistent (400), nothing stored', async () => {
    const upload = await createIncomplete(8, 'abc', 10);
    const response = await exchange(
      wharf.port,
      'PATCH',
      upload,
      { ...appendHeaders(8, 3, true) },
      'defg', // 3 + 4 = 7, but the length is 10
    );
    assert.equal(response.status, 400);
    assert.equal(problemOf(response).type, `${problemBase}inconsistent-upload-length`);
    assert.equal((await stored(upload)).toString(), 'abc');
  });

  test('DELETE cancels the upload (204); it is gone for both protocols ("Upload Cancellation")', async () => {
    const upload = await createIncomplete(8, 'bye');
    const response = await exchange(wharf.port, 'DELETE', upload, { 'Upload-Draft-Interop-Version': 8 });
    assert.equal(response.status, 204);
    const head = await exchange(wharf.port, 'HEAD', upload, { 'Upload-Draft-Interop-Version': 8 });
    assert.equal(head.status, 404);
    const tusHead = await send('HEAD', `${wharf.origin}${upload}`, { headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(tusHead.status, 404);
  });

  test('a new request interrupts an append still in flight, and its offset is usable at once ("Concurrency")', async () => {
    const upload = await createIncomplete(8, 'start-');
    const stale = await RawConnection.open(wharf.port);
    try {
      // Upload-Complete: ?0: a ?1 with Content-Length 100 would have fixed the length at 106 ("Length").
      stale.write(rawHead('PATCH', upload, { ...appendHeaders(8, 6, false), 'Content-Length': 100 }));
      stale.write('0123456789');
      // Wait until the server has those 10 bytes: the admin API shows the live offset of a body being received
      // (a HEAD would interrupt the append, which is what is tested next).
      await eventually(async () => {
        const reply = await send('GET', `${wharf.origin}/admin/api/uploads?state=in_progress`);
        const { uploads } = JSON.parse(reply.text) as { uploads: Array<Record<string, unknown>> };
        return uploads.find((entry) => entry.id === path.basename(upload) && entry.offset === 16);
      }, 'the 10 bytes of the append in flight');
      const head = await exchange(wharf.port, 'HEAD', upload, { 'Upload-Draft-Interop-Version': 8 });
      assert.equal(head.status, 204);
      assert.equal(head.headers['upload-offset'], '16', 'the interrupted append kept what arrived');
      const resumed = await exchange(wharf.port, 'PATCH', upload, appendHeaders(8, 16, true), 'end');
      assert.equal(resumed.status, 204, resumed.body.toString());
      assert.equal(resumed.headers['upload-complete'], '?1');
      assert.equal((await stored(upload)).toString(), 'start-0123456789end');
    } finally {
      stale.close();
    }
  });

  test('a new request interrupts a creation whose body is still in flight, as it does an append ("Concurrency")', async () => {
    const stale = await RawConnection.open(wharf.port);
    try {
      // Announced by its 104 before a byte of the body is read: from then on the upload is any request's.
      stale.write(
        rawHead('POST', '/files', {
          ...completeHeader(8, true),
          'Upload-Draft-Interop-Version': 8,
          'Content-Length': 20,
        }),
      );
      stale.write('AAAAAAAAAA');
      const creating = await eventually(async () => {
        const reply = await send('GET', `${wharf.origin}/admin/api/uploads?state=in_progress`);
        const { uploads } = JSON.parse(reply.text) as { uploads: Array<Record<string, unknown>> };
        return uploads.find((entry) => entry.offset === 10 && entry.length === 20);
      }, 'the creation in flight');
      const upload = `/files/${String(creating.id)}`;
      const head = await exchange(wharf.port, 'HEAD', upload, { 'Upload-Draft-Interop-Version': 8 });
      assert.equal(head.status, 204);
      assert.equal(head.headers['upload-offset'], '10', 'the interrupted creation kept what arrived');
      const staleAnswer = await stale.read();
      assert.equal(staleAnswer.interim[0]?.status, 104);
      assert.equal(staleAnswer.headers['upload-offset'], '10');
      const resumed = await exchange(wharf.port, 'PATCH', upload, appendHeaders(8, 10, true), 'BBBBBBBBBB');
      assert.equal(resumed.status, 204, resumed.body.toString());
      assert.equal(resumed.headers['upload-complete'], '?1');
      assert.equal((await stored(upload)).toString(), 'AAAAAAAAAABBBBBBBBBB');
    } finally {
      stale.close();
    }
  });

  test('DELETE ends an append still in flight first, then removes the upload ("Upload Cancellation")', async () => {
    const upload = await createIncomplete(8, 'doomed-');
    const stale = await RawConnection.open(wharf.port);
    try {
      stale.write(rawHead('PATCH', upload, { ...appendHeaders(8, 7, false), 'Content-Length': 100 }));
      stale.write('0123');
      await eventually(async () => {
        const reply = await send('GET', `${wharf.origin}/admin/api/uploads?state=in_progress`);
        const { uploads } = JSON.parse(reply.text) as { uploads: Array<Record<string, unknown>> };
        return uploads.find((entry) => entry.id === path.basename(upload) && entry.offset === 11);
      }, 'the append in flight');
      const cancelled = await exchange(wharf.port, 'DELETE', upload, { 'Upload-Draft-Interop-Version': 8 });
      assert.equal(cancelled.status, 204);
      // The append in flight got its answer (it was interrupted) instead of holding the upload.
      const staleAnswer = await stale.read();
      assert.equal(staleAnswer.status, 400);
      assert.match(staleAnswer.body.toString(), /^ERR_UPLOAD_INTERRUPTED/);
      const head = await exchange(wharf.port, 'HEAD', upload, { 'Upload-Draft-Interop-Version': 8 });
      assert.equal(head.status, 404);
    } finally {
      stale.close();
    }
  });

  test('OPTIONS announces Upload-Limit from interop 6 (with expires in 6, max-age from 7)', async () => {
    for (const version of [5, 6, 7, 8]) {
      const response = await exchange(wharf.port, 'OPTIONS', '/files', {
        'Upload-Draft-Interop-Version': version,
      });
      assert.equal(response.status, 204);
      if (version < 6) assert.equal(response.headers['upload-limit'], undefined);
      else
        assert.equal(
          response.headers['upload-limit'],
          `max-size=${maxSize}, ${version >= 7 ? 'max-age' : 'expires'}=${lifetime}`,
        );
    }
  });

  test('an interop version Wharf does not speak is refused (400) without a 104; a spoken one gets it', async () => {
    for (const version of ['2', '9', 'eight']) {
      const response = await exchange(
        wharf.port,
        'POST',
        '/files',
        { 'Upload-Draft-Interop-Version': version, 'Upload-Complete': '?1' },
        'x',
      );
      assert.equal(response.status, 400, version);
      assert.equal(response.interim.length, 0);
      assert.match(response.body.toString(), /^ERR_IETF_INTEROP_VERSION/);
    }
    const spoken = await exchange(
      wharf.port,
      'POST',
      '/files',
      { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?1' },
      'x',
    );
    assert.equal(spoken.interim[0]?.status, 104);
  });
});

describe('IETF draft: the same life as a tus upload', () => {
  test('hooks fire the same events with request.protocol telling the protocols apart', async () => {
    const ietf = await createIncomplete(8, 'hooked-');
    await exchange(wharf.port, 'PATCH', ietf, appendHeaders(8, 7, true), 'done');
    const tusCreate = await send('POST', `${wharf.origin}/files`, {
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Length': 11,
        'Content-Type': 'application/offset+octet-stream',
      },
      body: 'hooked-done',
    });
    assert.equal(tusCreate.status, 201);
    const ietfId = path.basename(ietf);
    const tusId = path.basename(new URL(String(tusCreate.headers.location)).pathname);
    const ietfHooks = await receiver.waitForNames(ietfId, ['pre-create', 'post-create', 'post-finish']);
    const tusHooks = await receiver.waitForNames(tusId, ['pre-create', 'post-finish']);
    for (const hook of ietfHooks) assert.equal(requestOf(hook.payload).protocol, 'ietf-draft', hook.name);
    for (const hook of tusHooks) assert.equal(requestOf(hook.payload).protocol, 'tus-v1', hook.name);
    const finished = ietfHooks.find((hook) => hook.name === 'post-finish');
    const upload = finished?.payload.upload as Record<string, unknown>;
    assert.equal(upload.offset, 11);
    assert.equal(upload.length, 11);
  });

  test('the admin API lists an IETF upload with its offset, like a tus one', async () => {
    const upload = await createIncomplete(8, 'admin!');
    const reply = await send('GET', `${wharf.origin}/admin/api/uploads?state=in_progress`);
    assert.equal(reply.status, 200);
    const { uploads } = JSON.parse(reply.text) as { uploads: Array<Record<string, unknown>> };
    const listed = uploads.find((entry) => entry.id === path.basename(upload));
    assert.ok(listed, 'listed');
    assert.equal(listed.offset, 6);
  });

  test('an upload created with tus 1.0 can be appended to and completed with the draft', async () => {
    const created = await send('POST', `${wharf.origin}/files`, {
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': 8 },
    });
    const upload = new URL(String(created.headers.location)).pathname;
    const response = await exchange(wharf.port, 'PATCH', upload, appendHeaders(8, 0, true), '12345678');
    assert.equal(response.status, 204);
    assert.equal(response.headers['upload-complete'], '?1');
    const hash = createHash('sha256').update('12345678').digest('hex');
    const download = await send('GET', `${wharf.origin}${upload}`);
    assert.equal(createHash('sha256').update(download.body).digest('hex'), hash);
  });
});

describe('IETF draft from a browser (CORS)', () => {
  test('the preflight allows the draft fields and PUT; answers expose Upload-Complete and Upload-Limit', async () => {
    const origin = 'http://app.localhost';
    const preflight = await exchange(wharf.port, 'OPTIONS', '/files', {
      Origin: origin,
      'Access-Control-Request-Method': 'PUT',
      'Access-Control-Request-Headers': 'upload-draft-interop-version, upload-complete',
    });
    assert.equal(preflight.status, 204);
    assert.match(String(preflight.headers['access-control-allow-methods']), /\bPUT\b/);
    const allowed = String(preflight.headers['access-control-allow-headers']).toLowerCase();
    for (const name of ['upload-draft-interop-version', 'upload-complete', 'content-digest']) {
      assert.ok(allowed.includes(name), name);
    }
    const created = await exchange(
      wharf.port,
      'POST',
      '/files',
      { Origin: origin, 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?0' },
      'x',
    );
    assert.equal(created.status, 201);
    const exposed = String(created.headers['access-control-expose-headers']).toLowerCase();
    for (const name of ['upload-complete', 'upload-limit', 'upload-offset', 'location']) {
      assert.ok(exposed.split(', ').includes(name), name);
    }
  });
});

describe('IETF draft: integrity digests ("Content Digests", RFC 9530)', () => {
  const sha256 = (text: string): string => createHash('sha256').update(text).digest('base64');

  test('an append whose Content-Digest does not match is not appended (400); a matching one is', async () => {
    const upload = await createIncomplete(8, 'abc');
    const wrong = await exchange(
      wharf.port,
      'PATCH',
      upload,
      { ...appendHeaders(8, 3, false), 'Content-Digest': `sha-256=:${sha256('something else')}:` },
      'def',
    );
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.toString(), /^ERR_IETF_CONTENT_DIGEST_MISMATCH/);
    assert.equal(wrong.headers['upload-complete'], '?0');
    assert.equal((await stored(upload)).toString(), 'abc', 'the content was not appended');
    const right = await exchange(
      wharf.port,
      'PATCH',
      upload,
      // sha-512 is preferred when both are sent; an unknown algorithm beside them is ignored.
      {
        ...appendHeaders(8, 3, true),
        'Content-Digest': `unixsum=:AAAA:, sha-256=:${sha256('def')}:, sha-512=:${createHash('sha512').update('def').digest('base64')}:`,
      },
      'def',
    );
    assert.equal(right.status, 204, right.body.toString());
    assert.equal((await stored(upload)).toString(), 'abcdef');
  });

  test('a creation whose Content-Digest does not match keeps no upload', async () => {
    const response = await exchange(
      wharf.port,
      'POST',
      '/files',
      {
        'Upload-Draft-Interop-Version': 8,
        'Upload-Complete': '?1',
        'Content-Digest': `sha-256=:${sha256('x')}:`,
      },
      'not x',
    );
    assert.equal(response.status, 400);
    assert.match(response.body.toString(), /^ERR_IETF_CONTENT_DIGEST_MISMATCH/);
    const location = response.interim[0]?.headers.location;
    assert.ok(location, 'the 104 had announced it');
    const head = await exchange(wharf.port, 'HEAD', pathOf(location), { 'Upload-Draft-Interop-Version': 8 });
    assert.equal(head.status, 404);
  });
});

describe('IETF draft: hooks that answer', () => {
  test('a pre-create hook refusing a draft creation answers before the upload exists: its status, no 104', async () => {
    receiver.answer = (hook) =>
      hook.name === 'pre-create' &&
      (hook.payload.upload as { metadata: Record<string, string> }).metadata.filename === 'refused.txt'
        ? { status: 403, body: 'not this one' }
        : {};
    try {
      const refused = await exchange(
        wharf.port,
        'POST',
        '/files',
        {
          'Upload-Draft-Interop-Version': 8,
          'Upload-Complete': '?1',
          'Content-Disposition': 'attachment; filename="refused.txt"',
        },
        'data',
      );
      assert.equal(refused.status, 403);
      assert.equal(refused.body.toString(), 'not this one');
      assert.equal(refused.interim.length, 0);
      const accepted = await exchange(
        wharf.port,
        'POST',
        '/files',
        {
          'Upload-Draft-Interop-Version': 8,
          'Upload-Complete': '?1',
          'Content-Disposition': 'attachment; filename="fine.txt"',
        },
        'data',
      );
      assert.equal(accepted.status, 201, 'positive control');
      assert.equal(accepted.interim[0]?.status, 104);
    } finally {
      receiver.answer = () => ({});
    }
  });
});

describe('IETF draft turned off (--ietf-draft=false)', () => {
  test('a draft request is a tus 1.0 request then: 412 without Tus-Resumable, no 104', async () => {
    const off = await startWharf({ args: ['--ietf-draft=false'] });
    try {
      const response = await exchange(
        off.port,
        'POST',
        '/files',
        { 'Upload-Draft-Interop-Version': 8, 'Upload-Complete': '?1' },
        'x',
      );
      assert.equal(response.status, 412);
      assert.equal(response.interim.length, 0);
      const options = await exchange(off.port, 'OPTIONS', '/files', { 'Upload-Draft-Interop-Version': 8 });
      assert.equal(options.headers['upload-limit'], undefined);
      assert.equal(options.headers['tus-version'], '1.0.0', 'positive control: a tus answer');
    } finally {
      await off.stop();
    }
  });

  test('--max-body-size is max-append-size; a larger append is refused with 413 and Upload-Limit ("Limits")', async () => {
    const limited = await startWharf({ args: ['--max-body-size', '1k'] });
    try {
      const options = await exchange(limited.port, 'OPTIONS', '/files', {
        'Upload-Draft-Interop-Version': 8,
      });
      assert.equal(options.headers['upload-limit'], 'max-append-size=1024');
      const created = await exchange(limited.port, 'POST', '/files', {
        'Upload-Draft-Interop-Version': 8,
        'Upload-Complete': '?0',
      });
      const upload = pathOf(created.headers.location);
      const tooBig = await exchange(
        limited.port,
        'PATCH',
        upload,
        appendHeaders(8, 0, false),
        'x'.repeat(2048),
      );
      assert.equal(tooBig.status, 413);
      assert.equal(tooBig.headers['upload-limit'], 'max-append-size=1024');
      const fits = await exchange(
        limited.port,
        'PATCH',
        upload,
        appendHeaders(8, 0, false),
        'x'.repeat(1024),
      );
      assert.equal(fits.status, 204, 'positive control');
    } finally {
      await limited.stop();
    }
  });

  test('without limits, Upload-Limit says min-size=0 rather than nothing ("Limits")', async () => {
    const plain = await startWharf();
    try {
      const response = await exchange(plain.port, 'OPTIONS', '/files', { 'Upload-Draft-Interop-Version': 8 });
      assert.equal(response.headers['upload-limit'], 'min-size=0');
    } finally {
      await plain.stop();
    }
  });
});
