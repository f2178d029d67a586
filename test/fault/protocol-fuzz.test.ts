import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { RawConnection, type RawResponse, rawRequest } from '../support/raw-http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/**
 * Property-based fuzzing of every tus header and method against the real `wharf` process. Whatever a client sends,
 * the answer is a 2xx or a 4xx with an error code, framed exactly (read on a raw kept-alive socket), the server
 * stays up, and nothing outside its data folder changes. The seed is fixed so CI explores the same cases each run;
 * WHARF_FUZZ_SEED and WHARF_FUZZ_RUNS explore others (a failure prints the seed and the shrunk request list).
 */
const seed = Number(process.env.WHARF_FUZZ_SEED ?? 1707);
const numRuns = Number(process.env.WHARF_FUZZ_RUNS ?? 150);

type Target =
  | { readonly kind: 'endpoint' }
  | { readonly kind: 'upload'; readonly index: number; readonly suffix: string }
  | { readonly kind: 'raw'; readonly path: string };

interface FuzzRequest {
  readonly method: string;
  readonly target: Target;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
}

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
});
const number = fc.oneof(
  fc.nat({ max: 2_000_000 }).map(String),
  fc.constantFrom(
    '-1',
    '0',
    '00',
    '1e3',
    '0x10',
    '18446744073709551616',
    '9007199254740993',
    ' 5',
    '5 ',
    '+5',
    '',
  ),
  printable,
);
const base64 = fc.uint8Array({ maxLength: 80 }).map((bytes) => Buffer.from(bytes).toString('base64'));
const metadataKey = fc.oneof(
  fc.constantFrom(
    'filename',
    'filetype',
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
  ),
  printable.filter((key) => !key.includes(',')),
);
const metadata = fc.oneof(
  fc
    .array(fc.tuple(metadataKey, fc.option(base64, { nil: undefined })), { maxLength: 6 })
    .map((pairs) => pairs.map(([key, value]) => (value === undefined ? key : `${key} ${value}`)).join(',')),
  printable,
);
/** `#n` stands for the URL of the n-th upload created so far in the run (resolved when the request is sent). */
const concatUrl = fc.oneof(
  fc.nat({ max: 5 }).map((index) => `#${index}`),
  fc.constantFrom(
    'http://evil.example/files/x',
    'https://127.0.0.2/files/x',
    '/files/../files/x',
    '/other/x',
    'files/x',
    '/files/',
    '',
  ),
  printable,
);
const headerValues: Readonly<Record<string, fc.Arbitrary<string>>> = {
  'Tus-Resumable': fc.oneof(
    fc.constant('1.0.0'),
    fc.constant('1.0.0'),
    fc.constantFrom('0.2.2', '1.0', ''),
    printable,
  ),
  'Upload-Length': number,
  'Upload-Offset': number,
  'Upload-Defer-Length': fc.oneof(fc.constantFrom('1', '0', '2', ''), printable),
  'Upload-Metadata': metadata,
  'Upload-Concat': fc.oneof(
    fc.constant('partial'),
    fc.array(concatUrl, { maxLength: 4 }).map((urls) => `final;${urls.join(' ')}`),
    fc.array(concatUrl, { maxLength: 4 }).map((urls) => `final; ${urls.join('  ')}`),
    printable,
  ),
  'Upload-Checksum': fc.oneof(
    fc
      .tuple(fc.constantFrom('md5', 'sha1', 'sha256', 'sha512', 'crc32', 'SHA1', ''), base64)
      .map(([algorithm, digest]) => `${algorithm} ${digest}`),
    printable,
  ),
  'Content-Type': fc.oneof(
    fc.constant('application/offset+octet-stream'),
    fc.constantFrom('application/json', 'text/plain', 'application/offset+octet-stream; charset=x', ''),
    printable,
  ),
  'X-HTTP-Method-Override': fc.oneof(
    fc.constantFrom('PATCH', 'DELETE', 'HEAD', 'GET', 'POST', 'PUT'),
    printable,
  ),
  Range: fc.oneof(
    fc.tuple(fc.nat({ max: 50 }), fc.nat({ max: 50 })).map(([from, to]) => `bytes=${from}-${to}`),
    fc.constantFrom('bytes=-5', 'bytes=5-', 'bytes=0-0,2-3', 'bytes=-0', 'bytes=99999999999999999999-'),
    printable,
  ),
};
const header = fc
  .constantFrom(...Object.keys(headerValues))
  .chain((name) =>
    (headerValues[name] as fc.Arbitrary<string>).map((value) => [name, value.trim()] as const),
  );
const target: fc.Arbitrary<Target> = fc.oneof(
  { weight: 2, arbitrary: fc.constant({ kind: 'endpoint' } as const) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.nat({ max: 5 }), fc.constantFrom('', '', '', '/', '/x', '%00', '?a=b'))
      .map(([index, suffix]) => ({ kind: 'upload', index, suffix }) as const),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          '/files/../canary.txt',
          '/files/..%2Fcanary.txt',
          '/files/%2e%2e%2fcanary.txt',
          '/files/..%2F..%2Fsibling%2Fnote.txt',
          '/files/%00',
          '/files//',
          '/files/a/b',
          '/files/.info',
          '/files/CON',
          '/',
          '/files',
          `/files/${'a'.repeat(2000)}`,
        ),
        fc
          .string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code)) })
          .map((segment) => `/files/${segment}`),
      )
      .map((rawPath) => ({ kind: 'raw', path: rawPath }) as const),
  },
);
/**
 * Tus-valid headers for each method. When sent, `@offset` becomes the upload's last known offset, and `@length`
 * the body's length (an upload the creation completes) or, for an odd length, 16 more (one a PATCH can go on).
 */
const validHeaders: Readonly<Record<string, readonly (readonly [string, string])[]>> = {
  POST: [
    ['Tus-Resumable', '1.0.0'],
    ['Upload-Length', '@length'],
    ['Content-Type', 'application/offset+octet-stream'],
  ],
  PATCH: [
    ['Tus-Resumable', '1.0.0'],
    ['Upload-Offset', '@offset'],
    ['Content-Type', 'application/offset+octet-stream'],
  ],
  HEAD: [['Tus-Resumable', '1.0.0']],
  DELETE: [['Tus-Resumable', '1.0.0']],
};
/** A request that is tus-valid but for a few headers changed, added or left out, or one made of fuzz alone. */
const request: fc.Arbitrary<FuzzRequest> = fc
  .record({
    method: fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('POST', 'PATCH', 'PATCH', 'HEAD', 'GET', 'DELETE', 'OPTIONS') },
      { weight: 1, arbitrary: fc.constantFrom('PUT', 'TRACE', 'PROPFIND', 'BREW') },
    ),
    target,
    startValid: fc.oneof(
      { weight: 4, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
    dropped: fc.nat({ max: 3 }),
    changed: fc.oneof(
      { weight: 3, arbitrary: fc.constant([]) },
      { weight: 3, arbitrary: fc.uniqueArray(header, { maxLength: 1, selector: ([name]) => name }) },
      { weight: 1, arbitrary: fc.uniqueArray(header, { maxLength: 4, selector: ([name]) => name }) },
    ),
    body: fc.uint8Array({ maxLength: 64 }),
  })
  .map(({ method, target: requestTarget, startValid, dropped, changed, body }) => {
    const headers = new Map<string, string>(startValid ? (validHeaders[method] ?? []) : []);
    const names = [...headers.keys()];
    if (dropped < names.length && changed.length > 0) headers.delete(names[dropped] as string);
    for (const [name, value] of changed) headers.set(name, value);
    return { method, target: requestTarget, headers: [...headers], body };
  });

/** A valid creation (with or without a body that completes it), so each run has uploads to aim at. */
const creation: fc.Arbitrary<FuzzRequest> = fc.uint8Array({ maxLength: 64 }).map((body) => ({
  method: 'POST',
  target: { kind: 'endpoint' },
  headers: validHeaders.POST ?? [],
  body,
}));

/** Every file below `folder` with the sha256 of its content (folders end with /). */
async function snapshot(folder: string, skip: string): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  for (const name of await readdir(folder, { recursive: true })) {
    const full = path.join(folder, name);
    if (full === skip || full.startsWith(`${skip}${path.sep}`)) continue;
    const info = await stat(full);
    entries.set(
      name,
      info.isDirectory()
        ? '/'
        : createHash('sha256')
            .update(await readFile(full))
            .digest('hex'),
    );
  }
  return entries;
}

let root: string;
let dataDir: string;
let wharf: WharfProcess;
let before_: Map<string, string>;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'wharf-fuzz-'));
  dataDir = path.join(root, 'data');
  await mkdir(path.join(root, 'sibling'));
  await writeFile(path.join(root, 'canary.txt'), 'must not change\n');
  await writeFile(path.join(root, 'sibling', 'note.txt'), 'must not change either\n');
  await mkdir(dataDir);
  before_ = await snapshot(root, dataDir);
  wharf = await startWharf({ dataDir, args: ['--max-file-size', '4096'] });
});

after(async () => {
  await wharf?.stop();
  await rm(root, { recursive: true, force: true });
});

/** The request line's target for a fuzzed target, given the uploads the run created so far. */
function resolveTarget(requestTarget: Target, uploads: readonly string[]): string {
  if (requestTarget.kind === 'endpoint') return '/files/';
  if (requestTarget.kind === 'raw') return requestTarget.path;
  const id = uploads.length === 0 ? 'unknown-upload' : uploads[requestTarget.index % uploads.length];
  return `/files/${id}${requestTarget.suffix}`;
}

function resolveHeader(
  name: string,
  value: string,
  uploads: readonly string[],
  offsets: ReadonlyMap<string, string>,
  requestTarget: string,
  bodyLength: number,
  port: number,
): string {
  if (value === '@offset') return offsets.get(requestTarget) ?? '0';
  if (value === '@length') return String(bodyLength % 2 === 0 ? bodyLength : bodyLength + 16);
  if (name !== 'Upload-Concat') return value;
  return value.replace(/#(\d)/g, (_, index: string) => {
    const id = uploads.length === 0 ? 'unknown-upload' : uploads[Number(index) % uploads.length];
    return Number(index) % 2 === 0 ? `/files/${id}` : `http://127.0.0.1:${port}/files/${id}`;
  });
}

/** What the effective method is once the override header is applied (as the server does). */
function answersWithoutBody(sent: FuzzRequest): boolean {
  return sent.method === 'HEAD';
}

function checkAnswer(sent: FuzzRequest, response: RawResponse): void {
  const context = `${sent.method} -> ${response.status} ${response.body.toString('latin1').slice(0, 200)}`;
  assert.ok(
    (response.status >= 200 && response.status < 300) || (response.status >= 400 && response.status < 500),
    `a 2xx or 4xx answer: ${context}`,
  );
  assert.equal(response.headers['tus-resumable'] ?? '1.0.0', '1.0.0', context);
  if (response.status >= 400 && !answersWithoutBody(sent) && response.body.length > 0) {
    assert.match(response.body.toString('utf8'), /^ERR_[A-Z0-9_]+: /, `a clear error code: ${context}`);
  }
}

describe('protocol fuzzing on a live server', () => {
  it('answers every request sequence with framed 2xx/4xx answers, stays up and touches nothing outside its folder', async () => {
    /** How often each method got each status: the run's coverage, checked below. */
    const statuses = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(creation, { minLength: 1, maxLength: 2 }),
        fc.array(request, { minLength: 1, maxLength: 10 }),
        async (creations, fuzzed) => {
          const sequence = [...creations, ...fuzzed];
          const uploads: string[] = [];
          /** The last Upload-Offset seen for each request target. */
          const offsets = new Map<string, string>();
          let connection = await RawConnection.open(wharf.port);
          try {
            for (const sent of sequence) {
              const requestTarget = resolveTarget(sent.target, uploads);
              const headers: Record<string, string> = {};
              for (const [name, value] of sent.headers) {
                headers[name] = resolveHeader(
                  name,
                  value,
                  uploads,
                  offsets,
                  requestTarget,
                  sent.body.length,
                  wharf.port,
                );
              }
              const wire = rawRequest(sent.method, requestTarget, headers, Buffer.from(sent.body));
              const response = await connection.exchange(wire, answersWithoutBody(sent));
              checkAnswer(sent, response);
              statuses.set(
                `${sent.method} ${response.status}`,
                (statuses.get(`${sent.method} ${response.status}`) ?? 0) + 1,
              );
              const offset = response.headers['upload-offset'];
              if (offset !== undefined) offsets.set(requestTarget, offset);
              const location = response.headers.location;
              if (response.status === 201 && location !== undefined) {
                uploads.push(new URL(location, wharf.endpoint).pathname.replace(/^\/files\//, ''));
              }
              if (response.headers.connection?.toLowerCase() === 'close' || connection.ended) {
                connection.close();
                connection = await RawConnection.open(wharf.port);
              }
            }
            // The socket carries nothing but the answers asked for: a last request's answer ends the stream.
            const { response, leftover } = await connection.finish(
              rawRequest('OPTIONS', '/files/', { 'Tus-Resumable': '1.0.0', Connection: 'close' }),
            );
            assert.equal(response.status, 204);
            assert.equal(response.headers['tus-version'], '1.0.0');
            assert.equal(leftover.length, 0, `bytes after the last answer: ${leftover.toString('latin1')}`);
          } finally {
            connection.close();
          }
        },
      ),
      { seed, numRuns },
    );
    // Positive control: the fuzzer reached the protocol's successful paths as well as its refusals.
    for (const answer of [
      'POST 201',
      'PATCH 204',
      'HEAD 200',
      'GET 200',
      'DELETE 204',
      'POST 400',
      'PATCH 409',
    ]) {
      assert.ok((statuses.get(answer) ?? 0) > 0, `no "${answer}" in ${JSON.stringify([...statuses])}`);
    }
    const health = await fetch(`${wharf.origin}/health`);
    assert.equal(health.status, 200);
    assert.equal(wharf.child.exitCode, null, 'the server is still running');
    assert.deepEqual(await snapshot(root, dataDir), before_, 'nothing outside the data folder changed');
    assert.ok((await readdir(dataDir)).length > 0, 'the data folder did get uploads');
  });
});

describe('requests the HTTP parser refuses', () => {
  it('answer with a framed 400 and a code on a kept-alive connection, after the answer before them', async () => {
    const connection = await RawConnection.open(wharf.port);
    const options = await connection.exchange(rawRequest('OPTIONS', '/files/', {}));
    assert.equal(options.status, 204);
    const { response, leftover } = await connection.finish(
      'BREW /files/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    );
    assert.equal(response.status, 400);
    assert.match(response.body.toString(), /^ERR_MALFORMED_REQUEST: /);
    assert.equal(response.headers.connection, 'close');
    assert.equal(leftover.length, 0);
  });

  it('answer headers past --max-header-size with 431 and a code', async () => {
    const connection = await RawConnection.open(wharf.port);
    const { response } = await connection.finish(
      rawRequest('OPTIONS', '/files/', { 'X-Big': 'x'.repeat(20_000) }),
    );
    assert.equal(response.status, 431);
    assert.match(response.body.toString(), /^ERR_HEADERS_TOO_LARGE: /);
  });
});
