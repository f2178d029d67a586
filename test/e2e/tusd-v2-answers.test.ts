/**
 * tusd 2's hook answers (RejectUpload, RejectTermination, ChangeFileInfo, HTTPResponse, StopUpload) are
 * honoured on every transport that answers, whatever the payload format: here dir hooks and an HTTP hook with
 * Wharf's own `default` payloads. What cannot be honoured is logged and recorded on the run.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

function metadata(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

const token = `admin-${randomUUID()}`;

interface Run {
  target: string;
  status: string;
  error?: string;
}

async function runsOf(wharf: WharfProcess, uploadId: string, event: string): Promise<Run[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const reply = await send('GET', `${wharf.origin}/admin/api/events?uploadId=${uploadId}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(reply.status, 200, reply.text);
    const { events } = JSON.parse(reply.text) as {
      events: { event: string; runs: Run[] }[];
    };
    const runs = events.filter((item) => item.event === event).flatMap((item) => item.runs);
    // Every target's run of the event has ended (one finishing first says nothing of the others).
    if (runs.length > 0 && runs.every((run) => run.status !== 'pending' && run.status !== 'running'))
      return runs;
    if (Date.now() > deadline) throw new Error(`no finished ${event} run for ${uploadId}`);
    await sleep(50);
  }
}

/** The hook runs of an upload (admin API) and Wharf's log lines above info, for a failure message. */
async function whyNotStopped(wharf: WharfProcess, url: string): Promise<string> {
  const events = await send('GET', `${wharf.origin}/admin/api/events?uploadId=${url.split('/').at(-1)}`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const warnings = wharf.logs.filter((line) => Number(line.level) > 30);
  return `not stopped; hook runs: ${events.text}; warnings: ${JSON.stringify(warnings)}`;
}

// The two suites at once, each with its own server; the tests of the first share what its hook server heard and
// go in turn.
describe('tusd 2 answers', { concurrency: true }, () => {
  describe('tusd 2 answers with Wharf payloads (--hooks-format default)', { concurrency: false }, () => {
    let scratch: string;
    let hooks: Server;
    let wharf: WharfProcess;
    const heard: { event: string; id: string }[] = [];

    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'wharf-tusd-answers-'));
      const dir = path.join(scratch, 'hooks');
      await mkdir(dir);
      // Dir hooks read Wharf's default payload from stdin and answer in tusd 2's shape on stdout.
      const script = (body: string): string => `#!${process.execPath}
let text = '';
process.stdin.on('data', (chunk) => { text += chunk; });
process.stdin.on('end', () => {
  const meta = JSON.parse(text).upload.metadata;
  ${body}
});
`;
      await writeFile(
        path.join(dir, 'pre-create'),
        script(`if (meta.plan === 'free') console.log(JSON.stringify({ RejectUpload: true, HTTPResponse: { StatusCode: 403, Body: 'no free uploads', Header: { 'X-Quota': 'exhausted' } } }));
  else if (meta.bare) console.log(JSON.stringify({ RejectUpload: true }));
  else if (meta.wanted) console.log(JSON.stringify({ ChangeFileInfo: { ID: meta.wanted, MetaData: { owner: 'hook' } }, HTTPResponse: { Header: { 'X-Chosen': 'yes' } } }));`),
      );
      await writeFile(
        path.join(dir, 'pre-terminate'),
        script(`if (meta.keep) console.log(JSON.stringify({ RejectTermination: true }));`),
      );
      // tusd's file hooks read TUS_ID, TUS_SIZE and TUS_OFFSET.
      await writeFile(
        path.join(dir, 'post-create'),
        `#!/bin/sh\ncat >/dev/null\necho "$TUS_ID $TUS_SIZE $TUS_OFFSET" >>"${path.join(scratch, 'tus-env.txt')}"\n`,
      );
      await chmod(path.join(dir, 'post-create'), 0o755);
      // tusd 1's -hooks-stop-code: a post-receive hook exiting 3 stops the upload.
      await writeFile(path.join(dir, 'post-receive'), script(`process.exitCode = meta.exitstop ? 3 : 0;`));
      await chmod(path.join(dir, 'post-receive'), 0o755);
      await chmod(path.join(dir, 'pre-create'), 0o755);
      await chmod(path.join(dir, 'pre-terminate'), 0o755);
      // The HTTP hook answers post events in tusd 2's shape.
      hooks = createServer((req, res) => {
        let text = '';
        req.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        req.on('end', () => {
          const event = req.headers['hook-name'] as string;
          const upload = (JSON.parse(text) as { upload: { id: string; metadata: Record<string, string> } })
            .upload;
          heard.push({ event, id: upload.id });
          let answer: object = {};
          if (event === 'post-create' && upload.metadata.greedy)
            answer = { ChangeFileInfo: { ID: 'not-on-a-post-event' }, Surprise: 1 };
          if (event === 'post-receive' && upload.metadata.stop)
            answer = { StopUpload: true, HTTPResponse: { StatusCode: 400, Body: 'stopped' } };
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(answer));
        });
      });
      await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
      wharf = await startWharf({
        args: [
          '--hooks-dir',
          dir,
          '--hooks-http-urls',
          `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hooks`,
          '--hooks',
          'pre-create,post-create,post-receive,pre-terminate,post-terminate',
          '--hooks-format',
          'default',
          '--admin',
          '--admin-token',
          token,
          '--hooks-allow-private-targets',
          '--hooks-stop-code',
          '3',
        ],
      });
    });

    after(async () => {
      await wharf?.stop();
      hooks?.close();
      await rm(scratch, { recursive: true, force: true });
    });

    it('RejectUpload refuses the creation with the hook’s HTTPResponse merged over tusd’s error', async () => {
      const refused = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata({ plan: 'free' }) },
      });
      assert.equal(refused.status, 403);
      assert.equal(refused.text, 'no free uploads');
      assert.equal(refused.headers['x-quota'], 'exhausted');
      const bare = await send('POST', wharf.endpoint, {
        headers: { ...tus, 'Upload-Length': 5, 'Upload-Metadata': metadata({ bare: '1' }) },
      });
      assert.equal(bare.status, 400);
      assert.equal(bare.text, 'ERR_UPLOAD_REJECTED: upload creation has been rejected by server\n');
      // Positive control: the same hook lets other uploads through.
      const allowed = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 5 } });
      assert.equal(allowed.status, 201);
    });

    it('ChangeFileInfo chooses the id and replaces the metadata; HTTPResponse headers reach the client', async () => {
      const created = await send('POST', wharf.endpoint, {
        headers: {
          ...tus,
          'Upload-Length': 5,
          'Upload-Metadata': metadata({ wanted: 'picked-by-tusd-hook' }),
        },
      });
      assert.equal(created.status, 201);
      assert.equal(created.headers['x-chosen'], 'yes');
      assert.match(String(created.headers.location), /\/files\/picked-by-tusd-hook$/);
      const head = await send('HEAD', new URL(String(created.headers.location), wharf.endpoint).toString(), {
        headers: tus,
      });
      assert.equal(head.status, 200);
      assert.equal(head.headers['upload-metadata'], `owner ${Buffer.from('hook').toString('base64')}`);
    });

    it('RejectTermination keeps the upload; tusd’s error is the answer', async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 3,
        'Upload-Metadata': metadata({ keep: '1' }),
      });
      const refused = await send('DELETE', url, { headers: tus });
      assert.equal(refused.status, 400);
      assert.equal(
        refused.text,
        'ERR_UPLOAD_TERMINATION_REJECTED: upload termination has been rejected by server\n',
      );
      assert.equal((await send('HEAD', url, { headers: tus })).status, 200);
      const other = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
      assert.equal((await send('DELETE', other, { headers: tus })).status, 204);
    });

    it('a change asked on a post event and an unknown key are not honoured: warned and recorded on the run', async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 3,
        'Upload-Metadata': metadata({ greedy: '1' }),
      });
      const id = url.split('/').at(-1) ?? '';
      const runs = await runsOf(wharf, id, 'post-create');
      const http = runs.find((run) => run.target.startsWith('http:'));
      assert.equal(http?.status, 'completed');
      assert.match(http?.error ?? '', /answer not honoured: .*Surprise: unknown key/);
      assert.match(
        http?.error ?? '',
        /ChangeFileInfo: only pre-create can change an upload, not post-create/,
      );
      // The run record can be read before the warning, logged with it, has come through Wharf's stdout.
      const logged = (): boolean =>
        wharf.logs.some((line) => line.msg === 'hook answer not honoured in part' && line.uploadId === id);
      for (const deadline = Date.now() + 10_000; !logged() && Date.now() < deadline; ) await sleep(20);
      assert.ok(logged(), 'a warning is logged');
      // The upload kept its id.
      assert.equal((await send('HEAD', url, { headers: tus })).status, 200);
    });

    it('a post-receive file hook exiting with --hooks-stop-code stops the upload (tusd 1)', async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 10,
        'Upload-Metadata': metadata({ exitstop: '1' }),
      });
      const patched = await send('PATCH', url, {
        headers: { ...tus, ...octets, 'Upload-Offset': 0 },
        body: 'hi',
      });
      assert.equal(patched.status, 204);
      // Bounded by time, not by a count of tries: on a loaded machine the hook process takes longer to run.
      const deadline = Date.now() + 60_000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        await sleep(50);
        status = (await send('HEAD', url, { headers: tus })).status;
      }
      // When it was not stopped, the hook runs of the upload and Wharf's warnings say why.
      assert.equal(status, 404, status === 404 ? '' : await whyNotStopped(wharf, url));
    });

    it('file hooks get tusd’s TUS_ID, TUS_SIZE and TUS_OFFSET', async () => {
      const url = await createUpload(wharf.endpoint, { 'Upload-Length': 7 });
      const id = url.split('/').at(-1) ?? '';
      let lines = '';
      for (const deadline = Date.now() + 60_000; !lines.includes(id) && Date.now() < deadline; ) {
        await sleep(50);
        lines = await readFile(path.join(scratch, 'tus-env.txt'), 'utf8').catch(() => '');
      }
      assert.ok(lines.split('\n').includes(`${id} 7 0`), lines);
    });

    it('StopUpload from post-receive terminates the upload (the PATCH was already stored: its answer stands)', async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 10,
        'Upload-Metadata': metadata({ stop: '1' }),
      });
      const id = url.split('/').at(-1) ?? '';
      const patched = await send('PATCH', url, {
        headers: { ...tus, ...octets, 'Upload-Offset': 0 },
        body: 'hello',
      });
      assert.equal(patched.status, 204);
      const deadline = Date.now() + 60_000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        await sleep(50);
        status = (await send('HEAD', url, { headers: tus })).status;
      }
      assert.equal(status, 404);
      // This upload's own post-terminate: an earlier test's terminated upload was heard already.
      const terminated = (): boolean =>
        heard.some((item) => item.event === 'post-terminate' && item.id === id);
      while (!terminated() && Date.now() < deadline) await sleep(20);
      assert.ok(terminated(), 'the HTTP hook heard post-terminate of the stopped upload');
      // Positive control: an upload whose hook does not stop it stays.
      const kept = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
      const keptPatch = await send('PATCH', kept, {
        headers: { ...tus, ...octets, 'Upload-Offset': 0 },
        body: 'hello',
      });
      assert.equal(keptPatch.status, 204);
      // Its post-receive runs have ended (a stop they asked for takes the upload's lock before the HEAD can).
      await runsOf(wharf, kept.split('/').at(-1) ?? '', 'post-receive');
      assert.equal((await send('HEAD', kept, { headers: tus })).status, 200);
    });
  });

  describe('a hook module action answering StopUpload on post-receive', { concurrency: false }, () => {
    let scratch: string;
    let wharf: WharfProcess;

    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'wharf-tusd-module-'));
      const module = path.join(scratch, 'modules', 'stopper');
      await mkdir(module, { recursive: true });
      await writeFile(
        path.join(module, 'index.mjs'),
        `export default ({ action }) => {
  action('post-receive', (upload) => (upload.metadata.stop ? { StopUpload: true } : undefined));
  action('post-create', (upload) => (upload.metadata.odd ? { RejectUpload: true } : undefined));
};
`,
      );
      wharf = await startWharf({
        args: ['--hooks-modules-dir', path.join(scratch, 'modules'), '--admin', '--admin-token', token],
      });
    });

    after(async () => {
      await wharf?.stop();
      await rm(scratch, { recursive: true, force: true });
    });

    it('terminates the upload; an upload it does not stop stays', async () => {
      const stopped = await createUpload(wharf.endpoint, {
        'Upload-Length': 10,
        'Upload-Metadata': metadata({ stop: '1' }),
      });
      const kept = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
      for (const url of [stopped, kept]) {
        const reply = await send('PATCH', url, {
          headers: { ...tus, ...octets, 'Upload-Offset': 0 },
          body: 'hello',
        });
        assert.equal(reply.status, 204);
      }
      // Bounded by time, not by a count of tries: on a loaded machine the hook process takes longer to run.
      const deadline = Date.now() + 60_000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        await sleep(50);
        status = (await send('HEAD', stopped, { headers: tus })).status;
      }
      assert.equal(status, 404);
      assert.equal((await send('HEAD', kept, { headers: tus })).status, 200);
    });

    it('records an answer a post-create action cannot give as not honoured', async () => {
      const url = await createUpload(wharf.endpoint, {
        'Upload-Length': 3,
        'Upload-Metadata': metadata({ odd: '1' }),
      });
      const runs = await runsOf(wharf, url.split('/').at(-1) ?? '', 'post-create');
      assert.match(
        runs.find((run) => run.target === 'module:stopper')?.error ?? '',
        /answer not honoured: RejectUpload: only pre-create can reject an upload, not post-create/,
      );
      assert.equal((await send('HEAD', url, { headers: tus })).status, 200);
    });
  });
});
