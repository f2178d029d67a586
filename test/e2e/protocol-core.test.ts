import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { createUpload, octets, send, sendRaw, tus } from '../support/http.ts';
import { exchangeOnOneSocket } from '../support/raw-socket.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

let wharf: WharfProcess;
before(async () => {
  wharf = await startWharf({ args: ['--max-file-size', '1000000'] });
});
after(async () => {
  await wharf.stop();
});

describe('OPTIONS', () => {
  it('advertises version, extensions, max size and checksum algorithms, ignoring Tus-Resumable', async () => {
    const reply = await send('OPTIONS', wharf.endpoint, { headers: { 'Tus-Resumable': '0.0.1' } });
    assert.equal(reply.status, 204);
    assert.equal(reply.headers['tus-version'], '1.0.0');
    assert.equal(
      reply.headers['tus-extension'],
      'creation,creation-with-upload,creation-defer-length,termination,concatenation,concatenation-unfinished,checksum,getting',
    );
    assert.equal(reply.headers['tus-max-size'], '1000000');
    assert.equal(reply.headers['tus-checksum-algorithm'], 'md5,sha1,sha256,sha512');
    assert.equal(reply.headers['tus-resumable'], '1.0.0');
  });
});

describe('Tus-Resumable', () => {
  for (const method of ['POST', 'HEAD', 'PATCH', 'DELETE']) {
    it(`${method} without a supported version answers 412 with Tus-Version`, async () => {
      const url = method === 'POST' ? wharf.endpoint : `${wharf.endpoint}some-id`;
      for (const headers of [{}, { 'Tus-Resumable': '0.2.2' }]) {
        const reply = await send(method, url, { headers: { 'Upload-Length': 5, ...headers } });
        assert.equal(reply.status, 412);
        assert.equal(reply.headers['tus-version'], '1.0.0');
        assert.equal(reply.headers['tus-resumable'], '1.0.0');
      }
    });
  }

  it('is on every response, errors included', async () => {
    const reply = await send('HEAD', `${wharf.endpoint}missing`, { headers: tus });
    assert.equal(reply.status, 404);
    assert.equal(reply.headers['tus-resumable'], '1.0.0');
    assert.equal(reply.headers['upload-offset'], undefined);
    assert.equal(reply.body.length, 0);
  });
});

describe('creation', () => {
  it('creates an upload: 201, absolute Location, offset 0, and HEAD reports it', async () => {
    const reply = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 10 } });
    assert.equal(reply.status, 201);
    assert.match(String(reply.headers.location), new RegExp(`^${wharf.endpoint}[0-9a-f-]{36}$`));
    assert.equal(reply.headers['upload-offset'], '0');
    const head = await send('HEAD', String(reply.headers.location), { headers: tus });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-offset'], '0');
    assert.equal(head.headers['upload-length'], '10');
    assert.equal(head.headers['cache-control'], 'no-store');
  });

  const badRequests: [string, Record<string, string>][] = [
    ['no length at all', {}],
    ['a negative length', { 'Upload-Length': '-1' }],
    ['a non-numeric length', { 'Upload-Length': 'abc' }],
    ['Upload-Defer-Length other than 1', { 'Upload-Defer-Length': '0' }],
    ['both length headers', { 'Upload-Length': '5', 'Upload-Defer-Length': '1' }],
    ['metadata that is not base64', { 'Upload-Length': '5', 'Upload-Metadata': 'filename !!!' }],
    ['duplicate metadata keys', { 'Upload-Length': '5', 'Upload-Metadata': 'a YQ==,a Yg==' }],
    ['metadata with three tokens', { 'Upload-Length': '5', 'Upload-Metadata': 'a YQ== extra' }],
  ];
  for (const [name, headers] of badRequests) {
    it(`refuses ${name} with 400 and stores nothing`, async () => {
      const before = await readdir(wharf.dataDir);
      const reply = await send('POST', wharf.endpoint, { headers: { ...tus, ...headers } });
      assert.equal(reply.status, 400, reply.text);
      assert.deepEqual(await readdir(wharf.dataDir), before);
    });
  }

  it('refuses a length above --max-file-size with 413', async () => {
    const reply = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 1000001 } });
    assert.equal(reply.status, 413);
  });

  it('echoes Upload-Metadata byte for byte, including key-only pairs and UTF-8 values', async () => {
    const metadata = 'zeta c8WCb8WEY2U=,is_confidential,alpha YQ==';
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 1, 'Upload-Metadata': metadata });
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.headers['upload-metadata'], metadata);
  });

  it('completes an Upload-Length: 0 upload at creation', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 0 });
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.headers['upload-offset'], '0');
    assert.equal(head.headers['upload-length'], '0');
    const download = await send('GET', url);
    assert.equal(download.status, 200);
    assert.equal(download.body.length, 0);
  });
});

describe('creation-with-upload', () => {
  it('stores the body sent with the POST and reports the offset', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, ...octets, 'Upload-Length': 11 },
      body: 'hello',
    });
    assert.equal(reply.status, 201);
    assert.equal(reply.headers['upload-offset'], '5');
    const url = String(reply.headers.location);
    const patch = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 5 },
      body: ' world',
    });
    assert.equal(patch.status, 204);
    assert.equal((await send('GET', url)).text, 'hello world');
  });

  it('refuses a body with another content type instead of dropping it, storing nothing', async () => {
    const before = await readdir(wharf.dataDir);
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Content-Type': 'text/plain', 'Upload-Length': 5 },
      body: 'hello',
    });
    assert.equal(reply.status, 415);
    assert.deepEqual(await readdir(wharf.dataDir), before);
  });

  it('refuses a body longer than Upload-Length with 413', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, ...octets, 'Upload-Length': 3 },
      body: 'hello',
    });
    assert.equal(reply.status, 413);
  });
});

describe('PATCH', () => {
  it('refuses a wrong content type with 415', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
    const reply = await send('PATCH', url, {
      headers: { ...tus, 'Content-Type': 'application/octet-stream', 'Upload-Offset': 0 },
      body: 'hello',
    });
    assert.equal(reply.status, 415);
  });

  it('refuses a missing or malformed Upload-Offset with 400', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
    for (const headers of [{}, { 'Upload-Offset': '-1' }, { 'Upload-Offset': '1.5' }]) {
      const reply = await send('PATCH', url, { headers: { ...tus, ...octets, ...headers }, body: 'hello' });
      assert.equal(reply.status, 400);
    }
    assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-offset'], '0');
  });

  it('answers 409 with the current Upload-Offset on a mismatch and changes nothing', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
    await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body: 'abc' });
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'xyz',
    });
    assert.equal(reply.status, 409);
    assert.equal(reply.headers['upload-offset'], '3');
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.headers['upload-offset'], '3');
  });

  it('answers 404 for an unknown upload', async () => {
    const reply = await send('PATCH', `${wharf.endpoint}4b1d7d0e-8a3c-4c8f-9e4e-000000000000`, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'x',
    });
    assert.equal(reply.status, 404);
  });

  it('refuses a declared body past Upload-Length with 413 and keeps the offset', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 4 });
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'hello',
    });
    assert.equal(reply.status, 413);
    assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-offset'], '0');
  });

  it('discards a chunked body that runs past Upload-Length (413), keeping earlier bytes', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 6 });
    await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body: 'ab' });
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 2 },
      body: [Buffer.from('cd'), Buffer.from('efgh')],
    });
    assert.equal(reply.status, 413);
    assert.equal((await send('HEAD', url, { headers: tus })).headers['upload-offset'], '2');
    const path = `${wharf.dataDir}/${url.split('/').pop()}`;
    assert.equal((await readFile(path)).toString(), 'ab');
  });

  it('answers 204 with the offset to a PATCH on a finished upload', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 2 });
    await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body: 'ok' });
    const reply = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 2 }, body: '' });
    assert.equal(reply.status, 204);
    assert.equal(reply.headers['upload-offset'], '2');
  });

  it('accepts a chunked body sent after Expect: 100-continue (tus-java-client style)', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 8 });
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0, Expect: '100-continue' },
      body: [Buffer.from('1234'), Buffer.from('5678')],
    });
    assert.equal(reply.status, 204);
    assert.equal(reply.headers['upload-offset'], '8');
    assert.equal((await send('GET', url)).text, '12345678');
  });
});

describe('X-HTTP-Method-Override', () => {
  it('turns a POST into PATCH and DELETE', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
    const patched = await send('POST', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0, 'X-HTTP-Method-Override': 'PATCH' },
      body: 'abc',
    });
    assert.equal(patched.status, 204);
    assert.equal(patched.headers['upload-offset'], '3');
    const deleted = await send('POST', url, { headers: { ...tus, 'X-HTTP-Method-Override': 'DELETE' } });
    assert.equal(deleted.status, 204);
    assert.equal((await send('HEAD', url, { headers: tus })).status, 404);
  });
});

describe('upload ids never reach the file system unchecked', () => {
  const attempts = [
    '..%2F..%2F..%2Fetc%2Fpasswd',
    '..%2Fsecret',
    '%2E%2E',
    '.hidden',
    'a%00b',
    '..',
    'x%5C..%5Cy',
  ];
  for (const attempt of attempts) {
    it(`answers 404 for /files/${attempt}`, async () => {
      for (const method of ['HEAD', 'GET', 'DELETE']) {
        const reply = await send(method, `${wharf.endpoint}${attempt}`, { headers: tus });
        assert.equal(reply.status, 404, `${method} ${attempt}`);
      }
      const patch = await send('PATCH', `${wharf.endpoint}${attempt}`, {
        headers: { ...tus, ...octets, 'Upload-Offset': 0 },
        body: 'x',
      });
      assert.equal(patch.status, 404);
    });
  }

  it('refuses concatenation of paths outside the endpoint', async () => {
    const reply = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Upload-Concat': 'final;/files/../../etc/passwd /elsewhere/x' },
    });
    assert.equal(reply.status, 400);
  });

  it('answers a raw request line with traversal with 404', async () => {
    const answer = await sendRaw(
      wharf.port,
      'HEAD /files/../../etc/passwd HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 404/);
  });
});

describe('routing', () => {
  it('answers 405 with Allow for a method the resource does not support', async () => {
    const reply = await send('PUT', `${wharf.endpoint}abc`, { headers: tus });
    assert.equal(reply.status, 405);
    assert.equal(reply.headers.allow, 'OPTIONS, HEAD, PATCH, GET, DELETE');
  });

  it('answers 404 outside the endpoint', async () => {
    const reply = await send('GET', `${wharf.origin}/elsewhere`);
    assert.equal(reply.status, 404);
  });
});

describe('answer heads', () => {
  /** One request on its own connection, not half-closed (Node drops the answer to a request whose client did). */
  const exchange = async (request: string): Promise<string> =>
    (await exchangeOnOneSocket(wharf.port, [request])).toString('latin1');

  /**
   * The head of a raw answer as its status line, then its header lines sorted (their order carries no meaning),
   * Date's value masked and the upload id as <id>.
   */
  function headLines(answer: string, id?: string): string[] {
    const head = answer.slice(0, answer.indexOf('\r\n\r\n'));
    const [status = '', ...lines] = head
      .split('\r\n')
      .map((line) => (line.startsWith('Date: ') ? 'Date: <date>' : line))
      .map((line) => (id === undefined ? line : line.replaceAll(id, '<id>')));
    return [status, ...lines.sort()];
  }

  // Without an Origin only the tus handler sets headers; with one, CORS sets its own first. Either way every header
  // comes once, and a 201 without a body says Content-Length: 0: a head written before the answer's end (as
  // `writeHead` with a flat list would, to save setHeader's per-header work) announces a chunked body instead.
  for (const origin of [undefined, 'https://app.example']) {
    it(`POST 201 and PATCH 204 send each header once (${origin ?? 'no Origin'})`, async () => {
      const originLine = origin === undefined ? '' : `Origin: ${origin}\r\n`;
      const cors =
        origin === undefined
          ? []
          : [
              'Vary: Origin',
              `Access-Control-Allow-Origin: ${origin}`,
              `Access-Control-Expose-Headers: ${(await send('GET', wharf.endpoint, { headers: { Origin: origin } })).headers['access-control-expose-headers']}`,
            ];
      const created = await exchange(
        `POST /files/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Length: 5\r\n${originLine}Connection: close\r\n\r\n`,
      );
      const id = /^Location: http:\/\/127\.0\.0\.1\/files\/(\S+)\r$/m.exec(created)?.[1];
      assert.ok(id !== undefined, created);
      assert.deepEqual(headLines(created, id), [
        'HTTP/1.1 201 Created',
        ...[
          ...cors,
          'Tus-Resumable: 1.0.0',
          'X-Content-Type-Options: nosniff',
          'Location: http://127.0.0.1/files/<id>',
          'Upload-Offset: 0',
          'Date: <date>',
          'Connection: close',
          'Content-Length: 0',
        ].sort(),
      ]);
      const patched = await exchange(
        `PATCH /files/${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n` +
          `Content-Type: application/offset+octet-stream\r\nContent-Length: 5\r\n${originLine}Connection: close\r\n\r\nhello`,
      );
      assert.deepEqual(headLines(patched), [
        'HTTP/1.1 204 No Content',
        ...[
          ...cors,
          'Tus-Resumable: 1.0.0',
          'X-Content-Type-Options: nosniff',
          'Upload-Offset: 5',
          'Date: <date>',
          'Connection: close',
        ].sort(),
      ]);
      const head = await send('HEAD', `${wharf.endpoint}${id}`, { headers: tus });
      assert.equal(head.headers['upload-offset'], '5');
    });
  }

  it('a refused POST still sends the protocol headers', async () => {
    const refused = await exchange(
      'POST /files/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\nConnection: close\r\n\r\n',
    );
    const lines = headLines(refused);
    assert.equal(lines[0], 'HTTP/1.1 400 Bad Request');
    assert.equal(lines.filter((line) => line === 'Tus-Resumable: 1.0.0').length, 1);
    assert.equal(lines.filter((line) => line === 'X-Content-Type-Options: nosniff').length, 1);
  });
});
