import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { closeNow, listenOnLoopback } from '../support/loopback-server.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

// Issue 17, point 7: while a pre-finish hook (a virus scanner) decides, the bytes it has not approved cannot be
// downloaded, and HEAD still answers at once.

/** A pre-finish HTTP hook that holds every answer until the test gives it. */
class HoldingScanner {
  readonly #server: Server;
  readonly #held: { id: string; res: ServerResponse }[] = [];
  readonly #waiters: (() => void)[] = [];
  /** Ids of the uploads it was asked about, in order. */
  readonly asked: string[] = [];
  #port = 0;

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { upload?: { id?: string } };
        const id = String(payload.upload?.id);
        this.asked.push(id);
        const entry = { id, res };
        this.#held.push(entry);
        // A question whose asker died (the instance was killed) is no longer held.
        res.on('close', () => {
          const index = this.#held.indexOf(entry);
          if (index >= 0) this.#held.splice(index, 1);
        });
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/scan`;
  }

  async start(): Promise<void> {
    this.#port = await listenOnLoopback(this.#server);
  }

  close(): Promise<void> {
    return closeNow(this.#server);
  }

  /** Resolves once the scanner holds a question about `id`. */
  async holding(id: string): Promise<void> {
    await this.#until(() => this.#held.some((entry) => entry.id === id), `a question about ${id}`);
  }

  /** Resolves to the upload id of question number `index` (0-based) once it arrived. */
  async question(index: number): Promise<string> {
    await this.#until(() => this.asked.length > index, `question ${index}`);
    return this.asked[index] ?? '';
  }

  async #until(done: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`the scanner never got ${what}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Answers the held question about `id`: 200 approves, 422 with a body refuses. */
  answer(id: string, verdict: 'clean' | 'infected'): void {
    const index = this.#held.findIndex((entry) => entry.id === id);
    const [entry] = this.#held.splice(index, 1);
    if (entry === undefined) throw new Error(`no held question about ${id}`);
    if (verdict === 'clean') entry.res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
    else entry.res.writeHead(422, { 'Content-Type': 'text/plain' }).end('infected: EICAR');
  }
}

const idOf = (url: string): string => url.split('/').pop() ?? '';

async function patch(url: string, offset: number, body: string) {
  return send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': offset }, body });
}

describe('quarantine while a pre-finish hook decides', () => {
  let scanner: HoldingScanner;
  let wharf: WharfProcess;
  let scratch: string;
  // A short lock timeout: a HEAD that waited for the scan would answer 503 instead of the state.
  const args = () => ['--hooks-http-urls', scanner.url, '--hooks', 'pre-finish', '--lock-timeout', '2'];
  before(async () => {
    scanner = new HoldingScanner();
    await scanner.start();
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-quarantine-'));
    wharf = await startWharf({ args: args(), dataDir: scratch });
  });
  after(async () => {
    await wharf.stop();
    await scanner.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('GET answers 409 and HEAD shows the offset with Upload-Pending until the scanner approves', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 11 });
    const finalPatch = patch(url, 0, 'hello world');
    await scanner.holding(idOf(url));
    const get = await send('GET', url);
    assert.equal(get.status, 409);
    assert.match(get.text, /^ERR_AWAITING_APPROVAL: /);
    assert.doesNotMatch(get.text, /hello world/);
    const ranged = await send('GET', url, { headers: { Range: 'bytes=0-4' } });
    assert.equal(ranged.status, 409);
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.status, 200);
    assert.equal(head.headers['upload-offset'], '11');
    assert.equal(head.headers['upload-pending'], 'pre-finish');
    scanner.answer(idOf(url), 'clean');
    assert.equal((await finalPatch).status, 204);
    const served = await send('GET', url);
    assert.equal(served.status, 200);
    assert.equal(served.text, 'hello world');
    const after = await send('HEAD', url, { headers: tus });
    assert.equal(after.headers['upload-pending'], undefined);
    assert.equal(after.headers['upload-offset'], '11');
  });

  it('a refused upload is never served: 409 during the scan, ERR_UPLOAD_FAILED after', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5 });
    const finalPatch = patch(url, 0, 'EICAR');
    await scanner.holding(idOf(url));
    assert.equal((await send('GET', url)).status, 409);
    scanner.answer(idOf(url), 'infected');
    const refused = await finalPatch;
    assert.equal(refused.status, 422);
    assert.equal(refused.text, 'infected: EICAR');
    const get = await send('GET', url);
    assert.equal(get.status, 409);
    assert.match(get.text, /^ERR_UPLOAD_FAILED/);
    const head = await send('HEAD', url, { headers: tus });
    assert.equal(head.headers['upload-pending'], undefined);
    assert.equal(head.headers['upload-failed'], 'infected: EICAR');
  });

  it('a whole file sent with the creation request is quarantined the same way', async () => {
    const before = scanner.asked.length;
    const creation = send('POST', wharf.endpoint, {
      headers: { ...tus, ...octets, 'Upload-Length': 4 },
      body: 'abcd',
    });
    const id = await scanner.question(before);
    await scanner.holding(id);
    const get = await send('GET', `${wharf.endpoint}${id}`);
    assert.equal(get.status, 409);
    assert.match(get.text, /^ERR_AWAITING_APPROVAL/);
    scanner.answer(id, 'clean');
    assert.equal((await creation).status, 201);
    assert.equal((await send('GET', `${wharf.endpoint}${id}`)).text, 'abcd');
  });

  it('a partial the scanner refused cannot be concatenated: 409 ERR_UPLOAD_FAILED', async () => {
    const refused = await createUpload(wharf.endpoint, { 'Upload-Length': 1, 'Upload-Concat': 'partial' });
    const clean = await createUpload(wharf.endpoint, { 'Upload-Length': 1, 'Upload-Concat': 'partial' });
    const sent = [patch(refused, 0, 'x'), patch(clean, 0, 'y')];
    await scanner.holding(idOf(refused));
    await scanner.holding(idOf(clean));
    scanner.answer(idOf(refused), 'infected');
    scanner.answer(idOf(clean), 'clean');
    assert.deepEqual(
      (await Promise.all(sent)).map((reply) => reply.status),
      [422, 204],
    );
    const final = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Upload-Concat': `final;${refused} ${clean}` },
    });
    assert.equal(final.status, 409, final.text);
    assert.match(final.text, /^ERR_UPLOAD_FAILED: partial upload .* was refused by a pre-finish hook/);
    // Positive control: the approved partial alone makes a final.
    const good = await send('POST', wharf.endpoint, {
      headers: { ...tus, 'Upload-Concat': `final;${clean}` },
    });
    assert.equal(good.status, 201, good.text);
    assert.equal((await send('GET', String(good.headers.location))).text, 'y');
  });

  it('stays quarantined when the instance dies mid-scan; the client’s confirming PATCH scans again', async () => {
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 3 });
    const finalPatch = patch(url, 0, 'xyz').catch((error: unknown) => error);
    await scanner.holding(idOf(url));
    await wharf.stop('SIGKILL');
    await finalPatch;
    wharf = await startWharf({ args: args(), dataDir: scratch });
    const get = await send('GET', url.replace(/^http:\/\/[^/]+/, wharf.origin));
    assert.equal(get.status, 409);
    assert.match(get.text, /^ERR_AWAITING_APPROVAL/);
    const moved = url.replace(/^http:\/\/[^/]+/, wharf.origin);
    const head = await send('HEAD', moved, { headers: tus });
    assert.equal(head.headers['upload-offset'], '3');
    assert.equal(head.headers['upload-pending'], 'pre-finish');
    const asked = scanner.asked.filter((id) => id === idOf(url)).length;
    const confirm = send('PATCH', moved, { headers: { ...tus, ...octets, 'Upload-Offset': 3 }, body: '' });
    await scanner.holding(idOf(url));
    assert.equal(scanner.asked.filter((id) => id === idOf(url)).length, asked + 1);
    scanner.answer(idOf(url), 'clean');
    assert.equal((await confirm).status, 204);
    assert.equal((await send('GET', moved)).text, 'xyz');
  });
});
