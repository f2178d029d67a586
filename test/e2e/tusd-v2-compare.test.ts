/**
 * Proof against tusd itself: ONE hook server written from tusd 2's hook documentation runs against tusd and
 * against Wharf started with tusd's flags (so `--hooks-format` defaults to tusd-v2), and the same client
 * requests go to both. What the hook receives and what the client gets must match field by field, except
 * where Wharf is documented to do better or differently (docs/hooks.md, "tusd 2 hook servers"):
 *
 * - `Storage.InfoPath`: tusd's filestore keeps its info file beside the data; Wharf's records live in the info
 *   store (`--info-storage`), so Wharf's Storage has `Type` and `Path` only.
 * - Values that depend on the server instance: upload ids not chosen by a hook, storage paths, the peer port
 *   in `RemoteAddr`, the port in `Host`, absolute URLs in `Location`: compared after normalising them.
 * - post-receive progress events: how many arrive depends on timing on both servers; compared as "one or more,
 *   with growing offsets", and the last one of a finished PATCH carries the full offset on both.
 * - post-terminate after StopUpload: tusd reports the offset the stopped PATCH started from, Wharf the bytes
 *   it had stored when it stopped.
 * - Error bodies Wharf writes itself (not the hook's): Wharf's text differs from tusd's; every case here lets
 *   the hook choose the body, as tusd's docs show, so the bodies match.
 *
 * tusd is built by scripts/services/tusd.sh (the version bench/setup.sh pins) into .cache/bin.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { octets, type Reply, send, tus } from '../support/http.ts';
import { repoRoot, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const tusdBinary = path.join(repoRoot, '.cache/bin/tusd');

type Json = Record<string, unknown>;

interface Received {
  readonly server: 'tusd' | 'wharf';
  readonly type: string;
  readonly event: Json;
}

function metadataHeader(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
}

function decodeMetadata(header: string | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of (header ?? '').split(',')) {
    const [key, value] = pair.trim().split(' ');
    if (key) result[key] = Buffer.from(value ?? '', 'base64').toString('utf8');
  }
  return result;
}

/**
 * The hook server, written from tusd's documentation (docs/advanced-topics/hooks.md): it answers
 * `application/json` with a HookResponse, deciding by the upload's metadata.
 */
function hookServer(received: Received[], server: 'tusd' | 'wharf'): Promise<Server> {
  const hooks = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Type: string; Event: Json };
      received.push({ server, type: request.Type, event: request.Event });
      const upload = request.Event.Upload as { MetaData: Record<string, string>; Offset: number };
      const meta = upload.MetaData;
      let answer: Json = {};
      if (request.Type === 'pre-create' && meta.plan === 'free') {
        answer = {
          RejectUpload: true,
          HTTPResponse: {
            StatusCode: 403,
            Body: '{"message":"the free plan cannot upload"}',
            Header: { 'Content-Type': 'application/json', 'X-Quota': 'exhausted' },
          },
        };
      } else if (request.Type === 'pre-create' && meta.wanted !== undefined) {
        answer = {
          ChangeFileInfo: {
            ID: meta.wanted,
            MetaData: { filename: (meta.filename ?? '').toUpperCase(), owner: 'hook' },
          },
          HTTPResponse: { Header: { 'X-Chosen-By': 'hook' } },
        };
      } else if (request.Type === 'pre-terminate' && meta.keep !== undefined) {
        answer = {
          RejectTermination: true,
          HTTPResponse: { StatusCode: 423, Body: 'kept by policy', Header: { 'Content-Type': 'text/plain' } },
        };
      } else if (request.Type === 'post-receive' && meta.stop !== undefined && upload.Offset > 0) {
        answer = {
          StopUpload: true,
          HTTPResponse: { StatusCode: 400, Body: 'stopped by the hook', Header: { 'X-Stopped': 'yes' } },
        };
      }
      const body = JSON.stringify(answer);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return new Promise((resolve) => hooks.listen(0, '127.0.0.1', () => resolve(hooks)));
}

function hookUrl(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
}

/** tusd's flags, the same for both servers (tusd takes them as given; Wharf translates them). */
function tusdFlags(hooks: Server): string[] {
  return [
    '-hooks-http',
    hookUrl(hooks),
    '-hooks-enabled-events',
    'pre-create,post-create,post-receive,pre-terminate,post-terminate,pre-finish,post-finish',
    '-progress-hooks-interval',
    '100ms',
    '-hooks-http-forward-headers',
    'Authorization',
    '-base-path',
    '/files/',
  ];
}

interface TusdProcess {
  readonly child: ChildProcess;
  readonly endpoint: string;
  readonly dir: string;
}

async function startTusd(hooks: Server): Promise<TusdProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), 'wharf-tusd-'));
  const child = spawn(
    tusdBinary,
    ['-host', '127.0.0.1', '-port', '0', '-upload-dir', path.join(dir, 'data'), ...tusdFlags(hooks)],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const endpoint = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /You can now upload files to: (http:\/\/127\.0\.0\.1:\d+\/files\/)/.exec(output);
      if (match?.[1] !== undefined) resolve(match[1]);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`tusd exited with ${code}: ${output}`)));
  });
  return { child, endpoint, dir };
}

/** A PATCH whose body keeps coming until the server answers (a client in the middle of a big upload). */
function streamingPatch(url: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'PATCH',
        headers: { ...tus, ...octets, 'Upload-Offset': 0, 'Content-Length': 1_000_000 },
        agent: false,
      },
      (res) => {
        clearInterval(feeding);
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            statusMessage: res.statusMessage ?? '',
            headers: res.headers,
            body,
            text: body.toString('utf8'),
          });
          req.destroy();
        });
      },
    );
    // The server may close the connection once it answered; that is not the test's concern.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    let answered = false;
    let sent = 0;
    const feeding = setInterval(() => {
      if (sent >= 900_000) return;
      sent += 1000;
      req.write(Buffer.alloc(1000, 0x61));
    }, 20);
    req.on('response', () => {
      answered = true;
    });
  });
}

/** What one client scenario saw on one server, normalised so the two servers can be compared. */
interface Observed {
  readonly client: Record<string, unknown>;
  readonly hooks: Record<string, unknown[]>;
}

const exceptions = [
  'Storage.InfoPath (Wharf keeps records in its info store)',
  'instance-specific values: ids not chosen by a hook, storage paths, ports, absolute URLs',
  'post-receive progress events: count and intermediate offsets depend on timing',
  "post-terminate of a stopped upload: tusd's Offset is where the PATCH started, Wharf's the bytes stored",
];

/** Replaces what differs per instance by placeholders; see {@link exceptions}. */
function normalise(value: unknown, ids: Map<string, string>): unknown {
  if (typeof value === 'string') {
    let text = value.replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>');
    for (const [id, name] of ids) text = text.replaceAll(id, name);
    return text;
  }
  if (Array.isArray(value)) return value.map((item) => normalise(item, ids));
  if (value !== null && typeof value === 'object') {
    const result: Json = {};
    for (const [key, item] of Object.entries(value as Json)) {
      if (key === 'Storage' && item !== null) {
        const storage = item as Json;
        result[key] = {
          Type: storage.Type,
          Path: typeof storage.Path === 'string' ? '<path>' : storage.Path,
        };
        continue;
      }
      result[key] = normalise(item, ids);
    }
    return result;
  }
  return value;
}

function clientView(reply: Reply, headers: readonly string[]): Record<string, unknown> {
  const view: Record<string, unknown> = { status: reply.status, body: reply.text };
  for (const name of headers) view[name] = reply.headers[name];
  return view;
}

async function runScenario(
  endpoint: string,
  received: Received[],
  server: 'tusd' | 'wharf',
): Promise<Observed> {
  const ids = new Map<string, string>();
  const client: Record<string, unknown> = {};
  const headers = { ...tus, Authorization: 'Bearer client-token', 'User-Agent': 'wharf-tusd-compare' };

  // 1. RejectUpload with the hook's HTTPResponse.
  const refused = await send('POST', endpoint, {
    headers: { ...headers, 'Upload-Length': 5, 'Upload-Metadata': metadataHeader({ plan: 'free' }) },
  });
  client.refused = clientView(refused, ['content-type', 'x-quota']);

  // 2. ChangeFileInfo: the hook chooses the id and rewrites the metadata; then the upload is finished.
  const chosen = await send('POST', endpoint, {
    headers: {
      ...headers,
      'Upload-Length': 5,
      'Upload-Metadata': metadataHeader({ wanted: 'chosen-by-hook', filename: 'notes.txt' }),
    },
  });
  client.chosen = {
    ...clientView(chosen, ['x-chosen-by']),
    location: new URL(String(chosen.headers.location), endpoint).pathname,
  };
  const chosenUrl = new URL(String(chosen.headers.location), endpoint).toString();
  const head = await send('HEAD', chosenUrl, { headers });
  client.chosenHead = {
    status: head.status,
    metadata: decodeMetadata(head.headers['upload-metadata'] as string),
  };
  const patched = await send('PATCH', chosenUrl, {
    headers: { ...headers, ...octets, 'Upload-Offset': 0 },
    body: 'hello',
  });
  client.chosenPatch = clientView(patched, ['upload-offset']);

  // 3. RejectTermination.
  const kept = await send('POST', endpoint, {
    headers: { ...headers, 'Upload-Length': 3, 'Upload-Metadata': metadataHeader({ keep: '1' }) },
  });
  const keptUrl = new URL(String(kept.headers.location), endpoint).toString();
  ids.set(keptUrl.split('/').at(-1) ?? '', '<kept>');
  const deleted = await send('DELETE', keptUrl, { headers });
  client.keptDelete = clientView(deleted, ['content-type']);
  client.keptHead = (await send('HEAD', keptUrl, { headers })).status;

  // 4. StopUpload from post-receive while the PATCH body is still arriving.
  const stopped = await send('POST', endpoint, {
    headers: { ...headers, 'Upload-Length': 1_000_000, 'Upload-Metadata': metadataHeader({ stop: '1' }) },
  });
  const stoppedUrl = new URL(String(stopped.headers.location), endpoint).toString();
  ids.set(stoppedUrl.split('/').at(-1) ?? '', '<stopped>');
  const stoppedPatch = await streamingPatch(stoppedUrl);
  client.stopPatch = clientView(stoppedPatch, ['x-stopped']);
  client.stopHead = (await send('HEAD', stoppedUrl, { headers })).status;

  // Post hooks arrive after the answers; wait for the last ones (post-terminate of the stopped upload).
  for (let waited = 0; waited < 100; waited++) {
    const mine = received.filter((entry) => entry.server === server);
    const terminated = mine.some(
      (entry) =>
        entry.type === 'post-terminate' && (entry.event.Upload as Json).ID === stoppedUrl.split('/').at(-1),
    );
    const finished = mine.some((entry) => entry.type === 'post-finish');
    if (terminated && finished) break;
    await sleep(50);
  }
  await sleep(300);

  const hooks: Record<string, unknown[]> = {};
  for (const entry of received.filter((item) => item.server === server)) {
    const event = normalise(entry.event, ids) as Json;
    const upload = event.Upload as Json;
    if (entry.type === 'post-receive' && upload.MetaData !== undefined && (upload.MetaData as Json).stop) {
      // Progress events of the stopped upload: offsets depend on timing; they only grow.
      upload.Offset = (upload.Offset as number) > 0 ? '>0' : 0;
    }
    // tusd reports the offset the stopped PATCH started from; Wharf the bytes it had stored (documented).
    if (entry.type === 'post-terminate' && (upload.MetaData as Json).stop) upload.Offset = '<differs>';
    const key = entry.type;
    const list = hooks[key] ?? [];
    const text = JSON.stringify(event);
    if (!list.some((item) => JSON.stringify(item) === text)) list.push(event);
    hooks[key] = list;
  }
  for (const list of Object.values(hooks))
    list.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  return { client, hooks };
}

describe('one tusd hook server, against tusd and against Wharf with tusd flags', () => {
  const received: Received[] = [];
  let tusdHooks: Server;
  let wharfHooks: Server;
  let tusd: TusdProcess;
  let wharf: WharfProcess;

  before(async () => {
    if (!existsSync(tusdBinary))
      execFileSync('bash', [path.join(repoRoot, 'scripts/services/tusd.sh'), 'start']);
    tusdHooks = await hookServer(received, 'tusd');
    wharfHooks = await hookServer(received, 'wharf');
    tusd = await startTusd(tusdHooks);
    // No --hooks-format: tusd's flags make it tusd-v2.
    wharf = await startWharf({ args: tusdFlags(wharfHooks) });
  });

  after(async () => {
    if (tusd !== undefined) {
      const exited = new Promise((resolve) => tusd.child.once('exit', resolve));
      tusd.child.kill('SIGTERM');
      await exited;
      await rm(tusd.dir, { recursive: true, force: true });
    }
    await wharf?.stop();
    tusdHooks?.close();
    wharfHooks?.close();
  });

  it('hook payloads and client answers match field by field (documented exceptions aside)', async () => {
    const fromTusd = await runScenario(tusd.endpoint, received, 'tusd');
    const fromWharf = await runScenario(wharf.endpoint, received, 'wharf');

    // What the client gets.
    assert.deepEqual(fromWharf.client, fromTusd.client);
    // The answers are the hook's, not defaults: the comparison is not between two servers ignoring it.
    assert.deepEqual(fromTusd.client.refused, {
      status: 403,
      body: '{"message":"the free plan cannot upload"}',
      'content-type': 'application/json',
      'x-quota': 'exhausted',
    });
    assert.equal((fromTusd.client.chosen as Json).location, '/files/chosen-by-hook');
    assert.deepEqual((fromTusd.client.chosenHead as Json).metadata, { filename: 'NOTES.TXT', owner: 'hook' });
    assert.equal((fromTusd.client.keptDelete as Json).status, 423);
    assert.equal(fromTusd.client.keptHead, 200);
    assert.equal((fromTusd.client.stopPatch as Json).status, 400);
    assert.equal((fromTusd.client.stopPatch as Json).body, 'stopped by the hook');
    assert.equal(fromTusd.client.stopHead, 404);

    // What the hook receives, event type by event type.
    assert.deepEqual(Object.keys(fromWharf.hooks).sort(), Object.keys(fromTusd.hooks).sort());
    for (const type of Object.keys(fromTusd.hooks)) {
      assert.deepEqual(
        fromWharf.hooks[type],
        fromTusd.hooks[type],
        `${type} payloads differ (exceptions: ${exceptions.join('; ')})`,
      );
    }
  });
});
