import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

describe('config-file endpoints with their own tus extensions and limits', () => {
  let scratch: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-endpoint-settings-'));
    await writeFile(
      path.join(scratch, 'wharf.yaml'),
      `endpoints:
  - path: /files
  - path: /archive
    extensions: [creation-with-upload, checksum, getting]
    maxFileSize: 1000
    maxBodySize: 4
`,
    );
    wharf = await startWharf({
      args: ['--config', path.join(scratch, 'wharf.yaml'), '--max-body-size', '0'],
    });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const archive = () => `${wharf.origin}/archive/`;

  it('OPTIONS lists each endpoint its own Tus-Extension and Tus-Max-Size', async () => {
    const files = await send('OPTIONS', wharf.endpoint);
    const archived = await send('OPTIONS', archive());
    assert.equal(files.status, 204);
    assert.equal(archived.status, 204);
    assert.equal(
      files.headers['tus-extension'],
      'creation,creation-with-upload,creation-defer-length,termination,concatenation,concatenation-unfinished,checksum,getting',
    );
    // creation-with-upload implies creation; nothing else is offered.
    assert.equal(archived.headers['tus-extension'], 'creation,creation-with-upload,checksum,getting');
    assert.equal(files.headers['tus-max-size'], undefined);
    assert.equal(archived.headers['tus-max-size'], '1000');
  });

  it('DELETE is refused with 405 on the endpoint without termination, and the upload stays', async () => {
    const url = await createUpload(archive(), { 'Upload-Length': 3 });
    const refused = await send('DELETE', url, { headers: tus });
    assert.equal(refused.status, 405);
    assert.equal(refused.headers.allow, 'OPTIONS, HEAD, PATCH, GET');
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-offset'], '0');

    const other = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
    assert.equal((await send('DELETE', other, { headers: tus })).status, 204);
    assert.equal((await send('HEAD', other, { headers: tus })).status, 404);
  });

  it('the endpoint refuses what it did not enable: deferred length and concatenation', async () => {
    const deferred = await send('POST', archive(), { headers: { ...tus, 'Upload-Defer-Length': 1 } });
    assert.equal(deferred.status, 400);
    const partial = await send('POST', archive(), {
      headers: { ...tus, 'Upload-Length': 3, 'Upload-Concat': 'partial' },
    });
    assert.equal(partial.status, 201);
    const headPartial = await send('HEAD', new URL(String(partial.headers.location), archive()).toString(), {
      headers: tus,
    });
    // Without concatenation the header means nothing: the upload is an ordinary one.
    assert.equal(headPartial.headers['upload-concat'], undefined);
    const onFiles = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Defer-Length': 1 } });
    assert.equal(onFiles.status, 201);
  });

  it('maxBodySize and maxFileSize apply to their endpoint only', async () => {
    const url = await createUpload(archive(), { 'Upload-Length': 10 });
    const tooBig = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'hello',
    });
    assert.equal(tooBig.status, 413);
    assert.match(tooBig.text, /larger than the maximum of 4 bytes/);
    const fits = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'hell',
    });
    assert.equal(fits.status, 204);
    assert.equal(fits.headers['upload-offset'], '4');

    const tooLong = await send('POST', archive(), { headers: { ...tus, 'Upload-Length': 1001 } });
    assert.equal(tooLong.status, 413);

    const elsewhere = await createUpload(wharf.endpoint, { 'Upload-Length': 2000 });
    const whole = await send('PATCH', elsewhere, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: Buffer.alloc(2000, 7),
    });
    assert.equal(whole.status, 204);
    assert.equal(whole.headers['upload-offset'], '2000');
  });

  it('an unknown extension in the config file stops Wharf with a clear error', async () => {
    const bad = path.join(scratch, 'bad.yaml');
    await writeFile(
      bad,
      'endpoints:\n  - path: /x\n    extensions: creation,teleport\n    maxBodySize: 1.5\n',
    );
    await assert.rejects(startWharf({ args: ['--config', bad] }), (error: Error) => {
      assert.match(error.message, /endpoints\[0\]\.extensions: unknown tus extension "teleport"/);
      assert.match(error.message, /endpoints\[0\]\.maxBodySize: must be a whole number of bytes/);
      return true;
    });
  });
});
