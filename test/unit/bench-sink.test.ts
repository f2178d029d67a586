// The bench's loopback sink (bench/sink, Go) is the physical limit every large figure is a share of, so it must
// take an upload the way bench/load.mjs sends it and keep every byte: POST, PATCHes on one keep-alive
// connection, HEAD. Built here with the Go toolchain the bench needs anyway (from Go's cache, under a second).
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const source = fileURLToPath(new URL('../../bench/sink/', import.meta.url));
let folder = '';
let binary = '';

before(async () => {
  folder = await mkdtemp(path.join(tmpdir(), 'wharf-bench-sink-'));
  binary = path.join(folder, 'sink');
  // As bench/setup.sh builds it: standard library only, so no network. Go's own install folder is searched too,
  // as scripts/services/tusd.sh does.
  await promisify(execFile)('go', ['build', '-o', binary, '.'], {
    cwd: source,
    env: { ...process.env, GOPROXY: 'off', PATH: `${process.env.PATH ?? ''}:/usr/local/go/bin` },
  });
});
after(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function startSink(dir: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(binary, ['-port', '0', '-dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const found = /listening on (\S+)/.exec(out);
      if (found?.[1]) resolve(found[1]);
    });
    child.once('exit', (code) => reject(new Error(`the sink exited with ${code}`)));
  });
  return { child, base: `http://${address}` };
}

type Answer = { status: number; headers: http.IncomingHttpHeaders };
function send(
  url: string,
  method: string,
  agent: http.Agent,
  headers: Record<string, string>,
  body?: Buffer,
) {
  return new Promise<Answer>((resolve, reject) => {
    const req = http.request(
      url,
      { method, agent, headers: { 'Tus-Resumable': '1.0.0', ...headers } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('the sink takes an upload in two PATCHes on one connection and keeps every byte at its offset', async () => {
  const dir = path.join(folder, 'data');
  const { child, base } = await startSink(dir);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const body = randomBytes(3 * 2 ** 20);
    const created = await send(`${base}/files/`, 'POST', agent, { 'Upload-Length': String(body.length) });
    assert.equal(created.status, 201);
    assert.match(created.headers.location ?? '', /^\/files\/[0-9a-f]{32}$/);
    const upload = `${base}${created.headers.location}`;
    const split = 2 * 2 ** 20 + 12345;
    const patch = (offset: number, part: Buffer) =>
      send(
        upload,
        'PATCH',
        agent,
        {
          'Upload-Offset': String(offset),
          'Content-Type': 'application/offset+octet-stream',
          'Content-Length': String(part.length),
        },
        part,
      );
    const first = await patch(0, body.subarray(0, split));
    assert.deepEqual([first.status, first.headers['upload-offset']], [204, String(split)]);
    const second = await patch(split, body.subarray(split));
    assert.deepEqual([second.status, second.headers['upload-offset']], [204, String(body.length)]);
    const headed = await send(upload, 'HEAD', agent, {});
    assert.deepEqual([headed.status, headed.headers['upload-offset']], [200, String(body.length)]);

    const files = await readdir(dir);
    assert.deepEqual(files, [path.basename(created.headers.location ?? '')]);
    assert.ok((await readFile(path.join(dir, files[0] ?? ''))).equals(body), 'the file holds the bytes sent');
  } finally {
    agent.destroy();
    child.kill('SIGKILL');
  }
});

test('the sink listens on loopback only', async () => {
  const refused = promisify(execFile)(binary, ['-host', '0.0.0.0', '-port', '0', '-dir', folder]);
  await assert.rejects(refused, /listens on loopback only, not 0\.0\.0\.0/);
  // The control: on loopback it starts.
  const { child } = await startSink(path.join(folder, 'control'));
  child.kill('SIGKILL');
});
