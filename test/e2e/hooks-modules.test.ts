import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { repoRoot, runWharfToEnd, startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** Modules import `wharf` as a user's would; here the built package entry, by URL. */
const wharfEntry = pathToFileURL(path.join(repoRoot, 'dist/index.js')).href;

function metadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

async function writeModule(root: string, folder: string, file: string, source: string): Promise<string> {
  await mkdir(path.join(root, folder), { recursive: true });
  const target = path.join(root, folder, file);
  await writeFile(target, source);
  return target;
}

/**
 * Generous for a loaded CI machine. (This test once stalled here for another reason: the HEAD polled below read
 * the record while the schedule removed it, and the file info store cached the removed record again, so HEAD
 * answered 200 for good; see test/unit/info/file-info-cache-removal.test.ts.)
 */
async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const runWharf = (args: readonly string[]) => runWharfToEnd(args);

let scratch: string;
let modulesDir: string;
let auditDir: string;
const auth = { Authorization: 'Bearer letmein' };

before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'wharf-modules-'));
  modulesDir = path.join(scratch, 'extensions', 'hooks');
  auditDir = path.join(scratch, 'audit');
  await mkdir(auditDir, { recursive: true });

  await writeModule(
    modulesDir,
    'a-auth',
    'index.mjs',
    `import { HookError } from ${JSON.stringify(wharfEntry)};
export default ({ filter }, context) => {
  filter('pre-create', (upload, meta) => {
    const token = meta.request.headers.authorization?.[0];
    if (token !== 'Bearer ' + context.env.TEST_UPLOAD_TOKEN) throw new HookError(401, 'a valid token is required');
    return upload;
  });
};
`,
  );
  // CommonJS (index.js without "type": "module") works too.
  await writeModule(
    modulesDir,
    'b-normalise',
    'index.js',
    `module.exports = function register({ filter }) {
  filter('pre-create', (upload) => {
    if (upload.metadata.filename) upload.metadata.filename = upload.metadata.filename.toLowerCase();
    upload.metadata.checkedBy = 'normalise';
    return upload;
  });
};
`,
  );
  await writeModule(
    modulesDir,
    'c-audit',
    'index.ts',
    `import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { HookModule } from ${JSON.stringify(wharfEntry.replace(/index\.js$/, 'index.d.ts'))};

const register: HookModule = ({ action }, context) => {
  action('post-finish', async (upload, meta) => {
    const chunks: Buffer[] = [];
    for await (const chunk of await context.uploads.read(upload.id)) chunks.push(chunk as Buffer);
    const record = { event: meta.event, id: upload.id, metadata: upload.metadata, bytes: Buffer.concat(chunks).toString() };
    // Written aside, then renamed: the test reads the file as soon as it exists, and must never see it half written.
    const file = join(${JSON.stringify(auditDir)}, upload.id + '.json');
    await writeFile(file + '.tmp', JSON.stringify(record));
    await rename(file + '.tmp', file);
  });
  action('post-create', () => {
    throw new Error('audit backend is down');
  });
};
export default register;
`,
  );
  await writeModule(
    modulesDir,
    'd-routes',
    'index.mjs',
    `export default ({ init }, context) => {
  init('routes.before', ({ router }) => {
    router.get('/ext/ping', (req, res) => res.end('pong'));
  });
  init('routes.after', ({ router }) => {
    router.get('/ext/uploads/:id', async (req, res, params) => {
      const upload = await context.uploads.get(params.id);
      res.statusCode = upload ? 200 : 404;
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(upload ?? { error: 'no such upload' }));
    });
  });
};
`,
  );
  await writeModule(
    modulesDir,
    'e-cleanup',
    'index.mjs',
    `export default ({ schedule }, context) => {
  // Every second: unfinished uploads older than TEST_MAX_AGE_MS are deleted.
  schedule('* * * * * *', async ({ uploads }) => {
    const maxAge = Number(context.env.TEST_MAX_AGE_MS);
    for await (const upload of uploads.list()) {
      if (!upload.finished && Date.now() - upload.createdAt * 1000 > maxAge) {
        await uploads.delete(upload.id);
        context.logger.info({ id: upload.id }, 'stale upload deleted');
      }
    }
  });
};
`,
  );
});
after(() => rm(scratch, { recursive: true, force: true }));

// The three suites at once: each runs its own servers (or commands) on the modules written above.
describe('hook modules', { concurrency: true }, () => {
  describe('hook modules (--hooks-modules-dir)', { concurrency: false }, () => {
    let wharf: WharfProcess;
    before(async () => {
      wharf = await startWharf({
        args: ['--hooks-modules-dir', modulesDir],
        env: { TEST_UPLOAD_TOKEN: 'letmein', TEST_MAX_AGE_MS: '1500' },
      });
    });
    after(() => wharf.stop());

    it('a filter cancels with the HookError status and message', async () => {
      const reply = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
      assert.equal(reply.status, 401);
      assert.equal(reply.text, 'a valid token is required');
    });

    it('filters run in order, each seeing the previous output, and rewrite the metadata', async () => {
      const url = await createUpload(wharf.endpoint, {
        ...auth,
        'Upload-Length': 5,
        'Upload-Metadata': metadata({ filename: 'Report.PDF' }),
      });
      const head = await send('HEAD', url, { headers: tus });
      assert.equal(
        head.headers['upload-metadata'],
        metadata({ filename: 'report.pdf', checkedBy: 'normalise' }),
      );
    });

    it('an action sees the finished upload (and its bytes); a failing action never reaches the client', async () => {
      const url = await createUpload(wharf.endpoint, {
        ...auth,
        'Upload-Length': 5,
        'Upload-Metadata': metadata({ filename: 'A.txt' }),
      });
      const id = url.split('/').pop() ?? '';
      const reply = await send('PATCH', url, {
        headers: { ...tus, ...octets, 'Upload-Offset': 0 },
        body: 'hello',
      });
      assert.equal(reply.status, 204);
      const text = await eventually(
        () => readFile(path.join(auditDir, `${id}.json`), 'utf8').catch(() => undefined),
        'the audit action',
      );
      assert.deepEqual(JSON.parse(text), {
        event: 'post-finish',
        id,
        metadata: { filename: 'a.txt', checkedBy: 'normalise' },
        bytes: 'hello',
      });
      await eventually(
        async () =>
          wharf.logs.some((entry) => entry.msg === 'hook module action failed' && entry.module === 'c-audit')
            ? true
            : undefined,
        'the failing post-create action to be logged',
      );
    });

    it('init routes answer before and after the tus endpoint', async () => {
      const ping = await send('GET', `${wharf.origin}/ext/ping`);
      assert.equal(ping.status, 200);
      assert.equal(ping.text, 'pong');
      const url = await createUpload(wharf.endpoint, { ...auth, 'Upload-Length': 4 });
      const id = url.split('/').pop() ?? '';
      const info = await send('GET', `${wharf.origin}/ext/uploads/${id}`);
      assert.equal(info.status, 200);
      assert.equal(JSON.parse(info.text).id, id);
      assert.equal((await send('GET', `${wharf.origin}/ext/uploads/nope`)).status, 404);
      assert.equal((await send('GET', `${wharf.origin}/elsewhere`)).status, 404);
    });
  });

  describe('a hook module schedule', { concurrency: false }, () => {
    // A server of its own: the schedule sees only this test's uploads, none an earlier test left locked or half-made.
    let wharf: WharfProcess;
    before(async () => {
      wharf = await startWharf({
        args: ['--hooks-modules-dir', modulesDir],
        env: { TEST_UPLOAD_TOKEN: 'letmein', TEST_MAX_AGE_MS: '1500' },
      });
    });
    after(() => wharf.stop());

    it('a schedule (every second) deletes old unfinished uploads and keeps finished ones', async () => {
      const stale = await createUpload(wharf.endpoint, { ...auth, 'Upload-Length': 10 });
      const done = await createUpload(wharf.endpoint, { ...auth, 'Upload-Length': 2 });
      const patched = await send('PATCH', done, {
        headers: { ...tus, ...octets, 'Upload-Offset': 0 },
        body: 'ok',
      });
      assert.equal(patched.status, 204);
      await eventually(async () => {
        const head = await send('HEAD', stale, { headers: tus });
        return head.status === 404 ? true : undefined;
      }, 'the stale upload to be deleted');
      assert.equal((await send('HEAD', done, { headers: tus })).status, 200);
      assert.equal((await send('GET', done)).text, 'ok');
    });
  });

  describe('broken modules and `wharf hooks check`', { concurrency: false }, () => {
    it('`wharf hooks check` lists every hook without serving', async () => {
      const result = await runWharf(['hooks', 'check', '--hooks-modules-dir', modulesDir]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /filter pre-create module:a-auth/);
      assert.match(result.stdout, /action post-finish module:c-audit/);
      assert.match(result.stdout, /init routes\.before module:d-routes/);
      assert.match(result.stdout, /schedule "\* \* \* \* \* \*" module:e-cleanup/);
      assert.match(result.stdout, /pre-create: module:a-auth, module:b-normalise/);
    });

    it('a module that fails to register stops start-up, naming its path and the error', async () => {
      const broken = path.join(scratch, 'broken');
      const file = await writeModule(
        broken,
        'bad',
        'index.mjs',
        `export default ({ schedule }) => { schedule('61 * * * *', () => {}); };\n`,
      );
      await assert.rejects(
        startWharf({ args: ['--hooks-modules-dir', broken] }),
        (error: Error) => error.message.includes(file) && /minute: 61 is outside 0-59/.test(error.message),
      );
      const check = await runWharf(['hooks', 'check', '--hooks-modules-dir', broken]);
      assert.equal(check.code, 1);
      assert.ok(check.stderr.includes(file), check.stderr);
    });
  });
});
