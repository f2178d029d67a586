import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { send, tus } from '../support/http.ts';
import { redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

interface Heard {
  upload: { id: string; metadata: Record<string, string> };
  hook: {
    name: string;
    event: string;
    error?: string;
    failure?: { stage: string; code: string; status: number; reason: string };
  };
}

async function heard(file: string): Promise<Heard[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Heard);
}

/** The upload's data file (not its record copy), wherever the endpoint keeps it under the data folder. */
async function dataFile(root: string, id: string): Promise<string> {
  const names = (await readdir(root, { recursive: true })) as string[];
  const found = names.find((name) => path.basename(name) === id);
  assert.ok(found !== undefined, `no data file for ${id} under ${root}: ${names.join(', ')}`);
  return path.join(root, found);
}

function metadata(marker: string): string {
  return `marker ${Buffer.from(marker).toString('base64')}`;
}

const answer = (status: number, body: string) =>
  JSON.stringify({ reject: true, httpResponse: { status, body } }).replaceAll("'", '');

// The three suites at once, each with its own folder and server; the tests of a suite go in turn.
describe('hook failure hearing', { concurrency: true }, () => {
  describe("run-on-failure hooks hear every failure of the operation they are bound to (Borgitory's on-failure hooks)", {
    concurrency: false,
  }, () => {
    let scratch: string;
    let wharf: WharfProcess;
    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'wharf-failure-hearing-'));
      const record = (file: string) => `'{ cat; echo; } >> ${file}'`;
      await writeFile(
        path.join(scratch, 'wharf.yaml'),
        `hooks:
  quota:
    transport: file
    shell: true
    command: 'grep -q refuse-create && printf %s ''${answer(403, 'over quota; see https://ops:hunter2@accounts.test/q?token=s3cr3t')}''; exit 0'
  scan:
    transport: file
    shell: true
    command: 'grep -q refuse-finish && printf %s ''${answer(422, 'virus found')}''; exit 0'
  finish-failed:
    transport: file
    shell: true
    runOn: failure
    command: ${record('finish-failed.jsonl')}
  page:
    transport: file
    shell: true
    runOn: failure
    command: ${record('page.jsonl')}
  done:
    transport: file
    shell: true
    command: ${record('done.jsonl')}
endpoints:
  - path: /files
    hooks:
      - { hook: quota, events: [pre-create] }
      - { hook: scan, events: [pre-finish] }
      - { hook: finish-failed, events: [post-finish] }
      - { hook: page, events: [post-receive, post-finish] }
      - { hook: done, events: [post-finish] }
`,
      );
      wharf = await startWharf({
        args: [
          '--config',
          path.join(scratch, 'wharf.yaml'),
          // Without kept-open upload files a data file replaced on disk is what the next PATCH writes to.
          '--info-storage',
          'redis-info-storage',
          '--info-db-dsn',
          redisUrl,
          '--redis-key-prefix',
          `wharf-failure-hearing-${randomUUID()}:`,
          // One post run at a time, in order: once the last event's runs are in, every earlier one is too.
          '--hooks-post-concurrency',
          '1',
        ],
        cwd: scratch,
      });
    });
    after(async () => {
      await wharf?.stop();
      await rm(scratch, { recursive: true, force: true });
    });

    it('a post-finish failure hook hears a pre-create refusal, a storage failure mid-PATCH (once) and a pre-finish refusal', async () => {
      // 1. pre-create refuses: no upload, and the client gets the hook's answer.
      const refused = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Length': 3, 'Upload-Metadata': metadata('refuse-create') },
      });
      assert.equal(refused.status, 403, refused.text);

      // 2. The storage fails mid-PATCH (ENOSPC from /dev/full), the client retries into the same failure, then
      //    the disk is back and the upload finishes.
      const created = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata('storage') },
      });
      assert.equal(created.status, 201, created.text);
      const url = new URL(String(created.headers.location), wharf.origin).href;
      const id = url.split('/').pop() ?? '';
      const file = await dataFile(wharf.dataDir, id);
      await rm(file);
      await symlink('/dev/full', file);
      const patch = () =>
        send('PATCH', url, {
          headers: { ...tus, 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' },
          body: 'hello',
        });
      for (let attempt = 0; attempt < 2; attempt++) {
        const full = await patch();
        assert.equal(full.status, 507, full.text);
      }
      await rm(file);
      await writeFile(file, '');
      const finished = await patch();
      assert.equal(finished.status, 204, finished.text);
      assert.equal(finished.headers['upload-offset'], '5');

      // 3. pre-finish refuses the last byte.
      const scanned = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Length': 3, 'Upload-Metadata': metadata('refuse-finish') },
      });
      assert.equal(scanned.status, 201, scanned.text);
      const infected = await send('PATCH', new URL(String(scanned.headers.location), wharf.origin).href, {
        headers: { ...tus, 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' },
        body: 'abc',
      });
      assert.equal(infected.status, 422, infected.text);

      // 4. A last refusal marks the end: its runs come after every earlier one.
      const last = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Length': 3, 'Upload-Metadata': metadata('refuse-create last') },
      });
      assert.equal(last.status, 403, last.text);
      const isLast = (runs: Heard[]) =>
        runs.some((run) => run.upload.metadata.marker === 'refuse-create last') ? runs : undefined;
      const finishFailed = await eventually(
        async () => isLast(await heard(path.join(scratch, 'finish-failed.jsonl'))),
        'the last refusal heard by finish-failed',
      );
      const paged = await eventually(
        async () => isLast(await heard(path.join(scratch, 'page.jsonl'))),
        'the last refusal heard by page',
      );

      // Positive control: the upload that finished reached the success hook, and no failure hook took it for one.
      const done = await heard(path.join(scratch, 'done.jsonl'));
      assert.deepEqual(
        done.map((run) => [run.upload.id, run.hook.event, run.hook.failure]),
        [[id, 'post-finish', undefined]],
      );

      const summary = (runs: Heard[]) =>
        runs.map((run) => [
          run.upload.metadata.marker,
          run.hook.event,
          run.hook.failure?.stage,
          run.hook.failure?.code,
          run.hook.failure?.status,
        ]);
      assert.deepEqual(summary(finishFailed), [
        ['refuse-create', 'post-finish', 'pre-create', 'ERR_HOOK_REJECTED', 403],
        ['storage', 'post-finish', 'storage', 'ERR_STORAGE_FULL', 507],
        ['refuse-finish', 'post-finish', 'pre-finish', 'ERR_HOOK_REJECTED', 422],
        ['refuse-create last', 'post-finish', 'pre-create', 'ERR_HOOK_REJECTED', 403],
      ]);
      // Bound to post-receive and post-finish: each failure once, as the first of its events that hears it.
      assert.deepEqual(summary(paged), [
        ['refuse-create', 'post-finish', 'pre-create', 'ERR_HOOK_REJECTED', 403],
        ['storage', 'post-receive', 'storage', 'ERR_STORAGE_FULL', 507],
        ['refuse-finish', 'post-finish', 'pre-finish', 'ERR_HOOK_REJECTED', 422],
        ['refuse-create last', 'post-finish', 'pre-create', 'ERR_HOOK_REJECTED', 403],
      ]);

      // The reason, with the credentials a hook's answer carried masked; the rustus-era error line is kept.
      const first = finishFailed[0]?.hook;
      assert.equal(first?.failure?.reason, 'over quota; see https://***@accounts.test/q?token=***');
      assert.equal(first?.error, `rejected by a pre-create hook: ${first?.failure?.reason}`);
      assert.doesNotMatch(JSON.stringify(finishFailed), /hunter2|s3cr3t/);
      assert.match(finishFailed[1]?.hook.failure?.reason ?? '', /ENOSPC|no space/i);
      assert.equal(finishFailed[2]?.hook.failure?.reason, 'virus found');
    });
  });

  describe('run-on-failure hooks of post-terminate and post-finish: a refused DELETE, a final that can never be built', {
    concurrency: false,
  }, () => {
    let scratch: string;
    let wharf: WharfProcess;
    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'wharf-failure-hearing-'));
      const record = (file: string) => `'{ cat; echo; } >> ${file}'`;
      await writeFile(
        path.join(scratch, 'wharf.yaml'),
        `hooks:
  hold:
    transport: file
    shell: true
    command: 'grep -q legal-hold && printf %s ''${answer(409, 'under legal hold')}''; exit 0'
  finish-failed:
    transport: file
    shell: true
    runOn: failure
    command: ${record('finish-failed.jsonl')}
  terminate-failed:
    transport: file
    shell: true
    runOn: failure
    command: ${record('terminate-failed.jsonl')}
  terminated:
    transport: file
    shell: true
    command: ${record('terminated.jsonl')}
endpoints:
  - path: /files
    hooks:
      - { hook: hold, events: [pre-terminate] }
      - { hook: finish-failed, events: [post-finish] }
      - { hook: terminate-failed, events: [post-terminate] }
      - { hook: terminated, events: [post-terminate] }
`,
      );
      wharf = await startWharf({
        args: ['--config', path.join(scratch, 'wharf.yaml'), '--hooks-post-concurrency', '1'],
        cwd: scratch,
      });
    });
    after(async () => {
      await wharf?.stop();
      await rm(scratch, { recursive: true, force: true });
    });

    async function held(marker: string): Promise<void> {
      const created = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Length': 3, 'Upload-Metadata': metadata(marker) },
      });
      assert.equal(created.status, 201, created.text);
      const deleted = await send('DELETE', new URL(String(created.headers.location), wharf.origin).href, {
        headers: tus,
      });
      assert.equal(deleted.status, 409, deleted.text);
    }

    it('each failure reaches the hooks of the operation it ends, and only those', async () => {
      await held('legal-hold');

      const partial = async (length: number, body?: string) => {
        const created = await send('POST', wharf.endpoint, {
          headers: { ...tus, 'Upload-Length': length, 'Upload-Concat': 'partial' },
        });
        assert.equal(created.status, 201, created.text);
        const url = new URL(String(created.headers.location), wharf.origin).href;
        if (body !== undefined) {
          const patched = await send('PATCH', url, {
            headers: { ...tus, 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' },
            body,
          });
          assert.equal(patched.status, 204, patched.text);
        }
        return url;
      };
      const a = await partial(2, 'ab');
      const b = await partial(3);
      const final = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Concat': `final;${new URL(a).pathname} ${new URL(b).pathname}` },
      });
      assert.equal(final.status, 201, final.text);
      const finalId = String(final.headers.location).split('/').pop() ?? '';
      const bId = b.split('/').pop() ?? '';
      assert.equal((await send('DELETE', b, { headers: tus })).status, 204);
      const gone = await send('HEAD', new URL(String(final.headers.location), wharf.origin).href, {
        headers: tus,
      });
      assert.equal(gone.status, 410);

      await held('legal-hold last');
      const terminateFailed = await eventually(async () => {
        const runs = await heard(path.join(scratch, 'terminate-failed.jsonl'));
        return runs.some((run) => run.upload.metadata.marker === 'legal-hold last') ? runs : undefined;
      }, 'the last refused DELETE heard by terminate-failed');

      assert.deepEqual(
        terminateFailed.map((run) => [run.upload.metadata.marker, run.hook.event, run.hook.failure]),
        [
          [
            'legal-hold',
            'post-terminate',
            { stage: 'pre-terminate', code: 'ERR_HOOK_REJECTED', status: 409, reason: 'under legal hold' },
          ],
          [
            'legal-hold last',
            'post-terminate',
            { stage: 'pre-terminate', code: 'ERR_HOOK_REJECTED', status: 409, reason: 'under legal hold' },
          ],
        ],
      );
      // A refused DELETE does not stop an upload from finishing: the post-finish failure hook heard only the final.
      const finishFailed = await heard(path.join(scratch, 'finish-failed.jsonl'));
      assert.deepEqual(
        finishFailed.map((run) => [run.upload.id, run.hook.event, run.hook.failure]),
        [
          [
            finalId,
            'post-finish',
            {
              stage: 'concatenation',
              code: 'ERR_CONCAT_FAILED',
              status: 410,
              reason: `partial upload ${bId} no longer exists`,
            },
          ],
        ],
      );
      // Positive control: the DELETE that went through reached the success hook, and only it.
      const terminated = await heard(path.join(scratch, 'terminated.jsonl'));
      assert.deepEqual(
        terminated.map((run) => [run.upload.id, run.hook.failure]),
        [[bId, undefined]],
      );
    });
  });

  describe('a post-finish failure hook hears an unfinished upload the expiration sweep removed', {
    concurrency: false,
  }, () => {
    let scratch: string;
    let wharf: WharfProcess;
    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'wharf-failure-hearing-'));
      const record = (file: string) => `'{ cat; echo; } >> ${file}'`;
      await writeFile(
        path.join(scratch, 'wharf.yaml'),
        `hooks:
  finish-failed:
    transport: file
    shell: true
    runOn: failure
    command: ${record('finish-failed.jsonl')}
  done:
    transport: file
    shell: true
    command: ${record('done.jsonl')}
endpoints:
  - path: /files
    hooks:
      - { hook: finish-failed, events: [post-finish] }
      - { hook: done, events: [post-finish] }
`,
      );
      wharf = await startWharf({
        args: [
          '--config',
          path.join(scratch, 'wharf.yaml'),
          '--upload-expiration',
          '1',
          '--expiration-sweep-interval',
          '1',
        ],
        cwd: scratch,
      });
    });
    after(async () => {
      await wharf?.stop();
      await rm(scratch, { recursive: true, force: true });
    });

    it('the expired upload is heard as a failure of its finishing; the finished one as a success', async () => {
      const stale = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata('stale') },
      });
      assert.equal(stale.status, 201, stale.text);
      const staleId = String(stale.headers.location).split('/').pop() ?? '';
      const finished = await send('POST', wharf.endpoint, {
        headers: {
          ...tus,
          'Upload-Length': 2,
          'Upload-Metadata': metadata('finished'),
          'Content-Type': 'application/offset+octet-stream',
        },
        body: 'ok',
      });
      assert.equal(finished.status, 201, finished.text);
      const finishedId = String(finished.headers.location).split('/').pop() ?? '';

      const failed = await eventually(async () => {
        const runs = await heard(path.join(scratch, 'finish-failed.jsonl'));
        return runs.length > 0 ? runs : undefined;
      }, 'the expired upload heard by the post-finish failure hook');
      assert.deepEqual(
        failed.map((run) => [run.upload.id, run.hook.event, run.hook.failure]),
        [
          [
            staleId,
            'post-finish',
            {
              stage: 'expiration',
              code: 'ERR_UPLOAD_EXPIRED',
              status: 410,
              reason: 'removed by the expiration sweep',
            },
          ],
        ],
      );
      assert.equal(
        (await send('HEAD', new URL(String(stale.headers.location), wharf.origin).href, { headers: tus }))
          .status,
        404,
      );
      // Positive control: the finished upload reached the success hook and was not swept.
      const done = await eventually(async () => {
        const runs = await heard(path.join(scratch, 'done.jsonl'));
        return runs.length > 0 ? runs : undefined;
      }, 'the finished upload heard by the success hook');
      assert.deepEqual(
        done.map((run) => [run.upload.id, run.hook.failure]),
        [[finishedId, undefined]],
      );
      assert.equal(
        (await send('HEAD', new URL(String(finished.headers.location), wharf.origin).href, { headers: tus }))
          .status,
        200,
      );
    });
  });
});
