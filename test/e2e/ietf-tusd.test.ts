/**
 * Wharf and tusd (v2, `-enable-experimental-protocol`, built by scripts/services/tusd.sh) side by side: the same
 * raw IETF-draft requests go to both, for the interop versions tusd speaks that Wharf speaks too (5 and 6).
 * Where they agree the test says so; where they differ the draft decides, and the clause is named.
 * Draft texts: interop 5 is draft -03, interop 6 drafts -04/-05 (tusd's own comments say the same).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exchange, pathOf, problemBase, problemOf } from '../support/ietf.ts';
import type { RawResponse } from '../support/raw-http.ts';
import { repoRoot, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const tusdBinary = path.join(repoRoot, '.cache/bin/tusd');
const maxSize = 1_000_000;

interface Tusd {
  readonly child: ChildProcess;
  readonly port: number;
  readonly dir: string;
}

async function startTusd(): Promise<Tusd> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wharf-ietf-tusd-'));
  const child = spawn(
    tusdBinary,
    [
      '-host',
      '127.0.0.1',
      '-port',
      '0',
      '-upload-dir',
      path.join(dir, 'data'),
      '-enable-experimental-protocol',
      '-max-size',
      String(maxSize),
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /You can now upload files to: http:\/\/127\.0\.0\.1:(\d+)\/files\//.exec(output);
      if (match?.[1] !== undefined) resolve(Number(match[1]));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`tusd exited with ${code}: ${output}`)));
  });
  return { child, port, dir };
}

/** The members of an sf-dictionary of integers (`min-size=0,max-size=5` and `max-size=5` alike). */
function dictionary(value: string | undefined): Record<string, number> {
  const members: Record<string, number> = {};
  for (const member of (value ?? '').split(',')) {
    const [key, number] = member.trim().split('=');
    if (key) members[key] = Number(number);
  }
  return members;
}

let tusd: Tusd;
let wharf: WharfProcess;

before(async () => {
  if (!existsSync(tusdBinary))
    execFileSync('bash', [path.join(repoRoot, 'scripts/services/tusd.sh'), 'start']);
  tusd = await startTusd();
  wharf = await startWharf({ args: ['--max-file-size', String(maxSize)] });
});
after(async () => {
  tusd.child.kill();
  await wharf.stop();
  await rm(tusd.dir, { recursive: true, force: true });
});

type Server = 'tusd' | 'wharf';
const servers: readonly Server[] = ['tusd', 'wharf'];
const portOf = (server: Server): number => (server === 'tusd' ? tusd.port : wharf.port);

/** The same request to both servers; `target` may depend on the server (an upload's path). */
async function both(
  method: string,
  target: string | ((server: Server) => string),
  headers: Readonly<Record<string, string | number>>,
  body?: string,
): Promise<Record<Server, RawResponse>> {
  const [onTusd, onWharf] = await Promise.all(
    servers.map((server) =>
      exchange(portOf(server), method, typeof target === 'string' ? target : target(server), headers, body),
    ),
  );
  return { tusd: onTusd as RawResponse, wharf: onWharf as RawResponse };
}

for (const version of [5, 6]) {
  describe(`interop ${version}: the same requests to tusd and Wharf`, () => {
    const draft = { 'Upload-Draft-Interop-Version': version };
    const append = (offset: number, complete: boolean) => ({
      ...draft,
      'Upload-Offset': offset,
      'Upload-Complete': complete ? '?1' : '?0',
      ...(version >= 6 ? { 'Content-Type': 'application/partial-upload' } : {}),
    });
    const uploads: Partial<Record<Server, string>> = {};
    const upload = (server: Server): string => uploads[server] ?? assert.fail('no upload yet');

    test('creation: both send 104 with Location and the echoed interop version, then 201 with that Location', async () => {
      const answers = await both(
        'POST',
        '/files/',
        { ...draft, 'Upload-Complete': '?0', 'Upload-Length': 20 },
        'hello',
      );
      for (const server of servers) {
        const response = answers[server];
        const interim = response.interim[0];
        assert.equal(interim?.status, 104, server);
        assert.equal(interim?.headers['upload-draft-interop-version'], String(version), server);
        assert.equal(response.status, 201, server);
        assert.equal(response.headers.location, interim?.headers.location, server);
        assert.equal(response.headers['upload-offset'], '5', server);
        uploads[server] = pathOf(response.headers.location);
        if (version >= 6)
          assert.equal(dictionary(response.headers['upload-limit'])['max-size'], maxSize, server);
      }
    });

    test('offset retrieval: both answer 204 with Upload-Offset, Upload-Complete: ?0, Upload-Length, no-store', async () => {
      const answers = await both('HEAD', upload, draft);
      for (const server of servers) {
        const { status, headers } = answers[server];
        assert.deepEqual(
          [
            status,
            headers['upload-offset'],
            headers['upload-complete'],
            headers['upload-length'],
            headers['cache-control'],
          ],
          [204, '5', '?0', '20', 'no-store'],
          server,
        );
      }
    });

    test('a mismatched offset: both answer 409 and store nothing', async () => {
      const answers = await both('PATCH', upload, append(2, false), 'abc');
      assert.equal(answers.tusd.status, 409);
      assert.equal(answers.wharf.status, 409);
      if (version >= 6) {
        // They differ: tusd sends no Upload-Offset. Draft -04 "Upload Appending": the server MUST send Upload-Offset
        // in the response while the upload is active, on a failure such as 409 too. Wharf does, with the problem type.
        assert.equal(answers.tusd.headers['upload-offset'], undefined);
        assert.equal(answers.wharf.headers['upload-offset'], '5');
        assert.equal(problemOf(answers.wharf).type, `${problemBase}mismatching-upload-offset`);
      }
      const heads = await both('HEAD', upload, draft);
      for (const server of servers) assert.equal(heads[server].headers['upload-offset'], '5', server);
    });

    if (version >= 6) {
      test('an append that is not application/partial-upload: both refuse; tusd 400, Wharf 415', async () => {
        const answers = await both(
          'PATCH',
          upload,
          { ...append(5, false), 'Content-Type': 'application/offset+octet-stream' },
          'abc',
        );
        // Draft -04 "Upload Appending" makes the append a PATCH of application/partial-upload; RFC 5789 section 2.2
        // ("Unsupported patch document") names 415 for a patch document type the resource does not take.
        assert.equal(answers.tusd.status, 400);
        assert.equal(answers.wharf.status, 415);
        const heads = await both('HEAD', upload, draft);
        for (const server of servers) assert.equal(heads[server].headers['upload-offset'], '5', server);
      });
    }

    test('the completing append: both store the rest and report the upload complete', async () => {
      const answers = await both('PATCH', upload, append(5, true), '123456789012345');
      for (const server of servers) {
        assert.equal(answers[server].status, 204, server);
        assert.equal(answers[server].headers['upload-offset'], '20', server);
      }
      const heads = await both('HEAD', upload, draft);
      for (const server of servers) assert.equal(heads[server].headers['upload-complete'], '?1', server);
    });

    if (version >= 6) {
      test('an append to the completed upload: tusd answers 204, Wharf 400 completed-upload', async () => {
        const answers = await both('PATCH', upload, append(20, true), 'x');
        // Draft -04 "Upload Appending": if the upload is already complete the server MUST NOT modify it and MUST
        // respond with 400 (Bad Request), MAY with the completed-upload problem type.
        assert.equal(answers.tusd.status, 204);
        assert.equal(answers.wharf.status, 400);
        assert.equal(problemOf(answers.wharf).type, `${problemBase}completed-upload`);
        const heads = await both('HEAD', upload, draft);
        for (const server of servers) assert.equal(heads[server].headers['upload-offset'], '20', server);
      });
    }

    test('a complete upload in one creation request: both finish it', async () => {
      const answers = await both('POST', '/files/', { ...draft, 'Upload-Complete': '?1' }, 'whole');
      for (const server of servers) {
        assert.equal(answers[server].interim[0]?.status, 104, server);
        assert.equal(answers[server].status, 201, server);
      }
      const heads = await both('HEAD', (server) => pathOf(answers[server].headers.location), draft);
      for (const server of servers) {
        assert.equal(heads[server].headers['upload-complete'], '?1', server);
        assert.equal(heads[server].headers['upload-length'], '5', server);
      }
    });

    test('a length above the maximum: tusd creates the upload anyway, Wharf refuses with 413 and Upload-Limit', async () => {
      const answers = await both('POST', '/files/', {
        ...draft,
        'Upload-Complete': '?0',
        'Upload-Length': maxSize + 1,
      });
      // Both are allowed (draft "Limits", max-size: the server "might not create" such an upload); Wharf does not,
      // so the client learns before sending, and its 413 carries Upload-Limit as "Limits" asks of such a 413.
      assert.equal(answers.tusd.status, 201);
      assert.equal(answers.wharf.status, 413);
      assert.equal(answers.wharf.interim.length, 0);
      if (version >= 6) assert.equal(dictionary(answers.wharf.headers['upload-limit'])['max-size'], maxSize);
    });

    test('cancellation: both answer DELETE with 204, and the upload is gone', async () => {
      const answers = await both('DELETE', upload, draft);
      for (const server of servers) assert.equal(answers[server].status, 204, server);
      const heads = await both('HEAD', upload, draft);
      for (const server of servers) assert.equal(heads[server].status, 404, server);
    });

    if (version >= 6) {
      test('OPTIONS: both announce the same max-size in Upload-Limit', async () => {
        const answers = await both('OPTIONS', '/files/', draft);
        for (const server of servers) {
          assert.ok(answers[server].status === 200 || answers[server].status === 204, server);
          assert.equal(dictionary(answers[server].headers['upload-limit'])['max-size'], maxSize, server);
        }
      });
    }
  });
}
