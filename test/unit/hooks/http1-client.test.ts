import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Http1Client, http1Target } from '../../../src/hooks/transports/http1-client.ts';
import { eventually } from '../../support/eventually.ts';
import { closeNow, listenOnLoopback } from '../../support/loopback-server.ts';

/** One request as a raw target read it off its connection. */
interface SeenRequest {
  readonly line: string;
  /** Header lines as sent (name case kept), in order. */
  readonly headerLines: readonly string[];
  readonly body: Buffer;
  /** Which connection (0, 1, …) carried it. */
  readonly connection: number;
}

interface RawTarget {
  readonly url: URL;
  readonly requests: SeenRequest[];
  /** Connections accepted, and how many of them have closed. */
  connections: number;
  closed: number;
}

/**
 * A target on a bare TCP server: it cuts requests (head, then Content-Length bytes) off each connection and
 * lets the test answer with whatever bytes it likes, so the client meets answers node:http would never send.
 */
async function rawTarget(
  t: TestContext,
  answer: (request: SeenRequest, socket: Socket, seen: RawTarget) => void,
  host = '127.0.0.1',
): Promise<RawTarget> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const connection = target.connections++;
    sockets.add(socket);
    socket.on('close', () => {
      target.closed++;
      sockets.delete(socket);
    });
    socket.on('error', () => {});
    let input = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      input = Buffer.concat([input, chunk]);
      for (;;) {
        const end = input.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [line = '', ...headerLines] = input.toString('latin1', 0, end).split('\r\n');
        const lengthLine = headerLines.find((each) => /^content-length:/i.test(each));
        const length = lengthLine === undefined ? 0 : Number(lengthLine.slice(lengthLine.indexOf(':') + 1));
        if (input.length < end + 4 + length) return;
        const request = { line, headerLines, body: input.subarray(end + 4, end + 4 + length), connection };
        input = input.subarray(end + 4 + length);
        target.requests.push(request);
        answer(request, socket, target);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const target: RawTarget = {
    url: new URL(`http://${host.includes(':') ? `[${host}]` : host}:${port}/hooks?x=1`),
    requests: [],
    connections: 0,
    closed: 0,
  };
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return target;
}

function client(t: TestContext, limits: Partial<ConstructorParameters<typeof Http1Client>[0]> = {}) {
  const made = new Http1Client({
    maxSockets: 64,
    maxHeaderBytes: 64 * 1024,
    bodyLimitBytes: 64 * 1024,
    ...limits,
  });
  t.after(() => made.close());
  return made;
}

function post(made: Http1Client, url: URL, body = '{"a":1}') {
  return made.request(
    http1Target(url),
    'POST',
    { 'Content-Type': 'application/json', 'Hook-Name': 'post-finish' },
    Buffer.from(body),
  );
}

const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

test('content-length: the request line, Host with the port, headers and body arrive; the answer is read', async (t) => {
  const target = await rawTarget(t, (_request, socket) => {
    socket.write('HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-Twice: a\r\nx-twice: b\r\n');
    socket.write('Location: /first\r\nLocation: /second\r\nContent-Length: 5\r\n\r\nhello');
  });
  const response = await post(client(t), target.url, '{"caf\u00e9":1}').response;
  assert.equal(response.status, 201);
  assert.equal(response.body.toString(), 'hello');
  assert.equal(response.headers['content-type'], 'text/plain');
  assert.equal(response.headers['x-twice'], 'a, b', 'repeated headers are joined, as node:http joins them');
  assert.equal(response.headers.location, '/first', 'node:http keeps the first Location');
  const [request] = target.requests;
  assert.equal(request?.line, 'POST /hooks?x=1 HTTP/1.1');
  assert.deepEqual(request?.headerLines, [
    'Content-Type: application/json',
    'Hook-Name: post-finish',
    `Host: 127.0.0.1:${target.url.port}`,
    `Content-Length: ${Buffer.byteLength('{"caf\u00e9":1}')}`,
    'Connection: keep-alive',
  ]);
  assert.equal(request?.body.toString(), '{"caf\u00e9":1}');
});

test('the request a node:http server reads is the one node:http would send (userinfo as Basic auth)', async (t) => {
  const seen: Array<{
    method: string | undefined;
    url: string | undefined;
    headers: Record<string, unknown>;
    body: string;
  }> = [];
  const server = createHttpServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on('end', () => {
      seen.push({ method: request.method, url: request.url, headers: request.headers, body });
      response.writeHead(200).end('fine');
    });
  });
  const port = await listenOnLoopback(server);
  t.after(() => closeNow(server));
  const made = client(t);
  const url = new URL(`http://us%40er:p%3Ass@127.0.0.1:${port}/a/b?c=d#fragment`);
  const response = await made.request(
    http1Target(url),
    'POST',
    { 'x-proxied': 'v', 'Content-Length': 3, 'content-length': 3 },
    Buffer.from('abc'),
  ).response;
  assert.equal(response.body.toString(), 'fine');
  assert.equal(seen[0]?.method, 'POST');
  assert.equal(seen[0]?.url, '/a/b?c=d');
  assert.equal(seen[0]?.body, 'abc');
  assert.equal(seen[0]?.headers.authorization, `Basic ${Buffer.from('us@er:p:ss').toString('base64')}`);
  assert.equal(seen[0]?.headers['x-proxied'], 'v');
  assert.equal(seen[0]?.headers.host, `127.0.0.1:${port}`);
});

test('a header value HTTP cannot carry throws as node:http does, before anything is sent', async (t) => {
  const target = await rawTarget(t, (_request, socket) => socket.write(ok));
  const made = client(t);
  assert.throws(
    () => made.request(http1Target(target.url), 'POST', { 'X-Bad': 'a\r\nInjected: 1' }, Buffer.from('x')),
    /Invalid character in header content/,
  );
  assert.throws(
    () => made.request(http1Target(target.url), 'POST', { 'Bad Name': 'a' }, Buffer.from('x')),
    /Header name must be a valid HTTP token/,
  );
  // Positive control: the same client sends a valid request to that target.
  assert.equal((await post(made, target.url).response).status, 200);
  assert.equal(target.requests.length, 1);
});

test('an IPv6 literal target ([::1]) is reached, with a bracketed Host header', async (t) => {
  const target = await rawTarget(t, (_request, socket) => socket.write(ok), '::1');
  const response = await post(client(t), target.url).response;
  assert.equal(response.body.toString(), 'ok');
  assert.ok(target.requests[0]?.headerLines.includes(`Host: [::1]:${target.url.port}`));
});

test('chunked, one byte per packet, with extensions and trailers; the connection is then reused', async (t) => {
  const answer = Buffer.from(
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n' +
      '5;name=value\r\n{"a":\r\nA\r\n"chunked"}\r\n0\r\nX-Trailer: t\r\n\r\n',
  );
  const target = await rawTarget(t, (request, socket) => {
    if (request.connection > 0 || target.requests.length > 1) {
      socket.write(ok);
      return;
    }
    socket.setNoDelay(true);
    void (async () => {
      for (let index = 0; index < answer.length; index++) {
        socket.write(answer.subarray(index, index + 1));
        await sleep(1);
      }
    })();
  });
  const made = client(t);
  const response = await post(made, target.url).response;
  assert.equal(response.status, 200);
  assert.equal(response.body.toString(), '{"a":"chunked"}');
  assert.equal(response.headers['x-trailer'], undefined, 'trailers are not headers');
  assert.equal((await post(made, target.url).response).body.toString(), 'ok');
  assert.equal(target.connections, 1, 'the second request went on the same connection');
});

test('keep-alive: two requests, one connection; after close() a new one (positive control)', async (t) => {
  let connections = 0;
  const server = createHttpServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200, { 'Content-Type': 'text/plain' }).end('yes'));
  });
  server.on('connection', () => connections++);
  const port = await listenOnLoopback(server);
  t.after(() => closeNow(server));
  const made = client(t);
  const url = new URL(`http://127.0.0.1:${port}/hooks`);
  assert.equal((await post(made, url).response).body.toString(), 'yes');
  assert.equal((await post(made, url).response).body.toString(), 'yes');
  assert.equal(connections, 1);
  made.close();
  assert.equal((await post(made, url).response).body.toString(), 'yes');
  assert.equal(connections, 2);
});

test('close() with a request in flight: its answer arrives, then its connection is closed, not kept idle', async (t) => {
  let held: Socket | undefined;
  const target = await rawTarget(t, (_request, socket, seen) => {
    if (seen.requests.length === 1) socket.write(ok);
    else held = socket;
  });
  const made = client(t);
  assert.equal((await post(made, target.url).response).body.toString(), 'ok');
  const inFlight = post(made, target.url);
  const socket = await eventually(() => held, 'the second request at the target');
  // Positive control: the second request went on the first one's connection, kept alive.
  assert.deepEqual([target.connections, target.closed], [1, 0]);
  made.close();
  socket.write(ok);
  assert.equal((await inFlight.response).body.toString(), 'ok');
  await eventually(() => (target.closed === 1 ? true : undefined), 'the connection closed after its answer');
});

test('a body read to the end of the connection; the next request opens a new one', async (t) => {
  const target = await rawTarget(t, (_request, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
  });
  const made = client(t);
  assert.equal((await post(made, target.url).response).body.toString(), 'until the end');
  assert.equal((await post(made, target.url).response).body.toString(), 'until the end');
  assert.equal(target.connections, 2);
});

test('Connection: close and HTTP/1.0 answers are not reused; a keep-alive one is (control)', async (t) => {
  const answers = [
    'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na',
    'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nb',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc',
    'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nd',
  ];
  const target = await rawTarget(t, (request, socket) => {
    socket.write(answers[target.requests.indexOf(request)] ?? '');
  });
  const made = client(t);
  const bodies: string[] = [];
  for (let index = 0; index < answers.length; index++)
    bodies.push((await post(made, target.url).response).body.toString());
  assert.deepEqual(bodies, ['a', 'b', 'c', 'd']);
  assert.deepEqual(
    target.requests.map((request) => request.connection),
    [0, 1, 2, 2],
  );
});

test('204 and 304 have no body, whatever they announce; the connection is reused', async (t) => {
  const answers = [
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n',
    ok,
  ];
  const target = await rawTarget(t, (request, socket) => {
    socket.write(answers[target.requests.indexOf(request)] ?? '');
  });
  const made = client(t);
  const statuses: number[] = [];
  for (let index = 0; index < answers.length; index++) {
    const response = await post(made, target.url).response;
    statuses.push(response.status);
    assert.equal(response.body.length, index < 2 ? 0 : 2);
  }
  assert.deepEqual(statuses, [204, 304, 200]);
  assert.equal(target.connections, 1);
});

test('bytes after a complete answer: that connection is not reused', async (t) => {
  const target = await rawTarget(t, (request, socket) => {
    socket.write(request.connection === 0 ? `${ok}HTTP/1.1 200 OK\r\n` : ok);
  });
  const made = client(t);
  assert.equal((await post(made, target.url).response).body.toString(), 'ok');
  assert.equal((await post(made, target.url).response).body.toString(), 'ok');
  assert.deepEqual(
    target.requests.map((request) => request.connection),
    [0, 1],
  );
  await eventually(() => (target.closed >= 1 ? true : undefined), 'the first connection closed');
});

test('100 Continue and 103 Early Hints are skipped', async (t) => {
  const target = await rawTarget(t, (_request, socket) => {
    socket.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${ok}`);
  });
  const response = await post(client(t), target.url).response;
  assert.equal(response.status, 200);
  assert.equal(response.headers.link, undefined);
  assert.equal(response.body.toString(), 'ok');
});

test('a stale kept-alive connection: the request goes once more on a new one', async (t) => {
  // The target answers the first request, then closes that connection when the second arrives on it without
  // answering: what a request meets when it takes a connection the target closed while it idled.
  const target = await rawTarget(t, (request, socket, seen) => {
    if (request.connection === 0 && seen.requests.length > 1) socket.destroy();
    else socket.write(ok);
  });
  const made = client(t);
  assert.equal((await post(made, target.url).response).body.toString(), 'ok');
  assert.equal((await post(made, target.url).response).body.toString(), 'ok');
  assert.deepEqual(
    target.requests.map((request) => request.connection),
    [0, 0, 1],
    'the second request reached the stale connection, then a new one',
  );
});

test('a new connection closed before any answer fails with socket hang up, sent once (control)', async (t) => {
  const target = await rawTarget(t, (_request, socket) => socket.destroy());
  await assert.rejects(post(client(t), target.url).response, {
    message: 'socket hang up',
    code: 'ECONNRESET',
  });
  assert.equal(target.requests.length, 1);
});

test('an idle connection the target closed is dropped; the next request opens a new one', async (t) => {
  const target = await rawTarget(t, (_request, socket) => {
    socket.write(ok);
    setTimeout(() => socket.end(), 20);
  });
  const made = client(t);
  assert.equal((await post(made, target.url).response).body.toString(), 'ok');
  await eventually(() => (target.closed === 1 ? true : undefined), 'the target closed the idle connection');
  assert.equal((await post(made, target.url).response).body.toString(), 'ok');
  assert.equal(target.connections, 2);
});

test('a response head over the limit fails and the connection is destroyed', async (t) => {
  const target = await rawTarget(t, (_request, socket) => {
    socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
  });
  await assert.rejects(post(client(t), target.url).response, /response head is larger than 65536 bytes/);
  await eventually(() => (target.closed === 1 ? true : undefined), 'the connection closed');
});

test('malformed answers fail with what was wrong, and the connection is destroyed', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['HTTP/1.1 2OO OK\r\n\r\n', /the status line "HTTP\/1\.1 2OO OK"/],
    ['ICY 200 OK\r\n\r\n', /the status line "ICY 200 OK"/],
    ['HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n', /the header line "Bad Header: x"/],
    ['HTTP/1.1 200 OK\r\n folded\r\n\r\n', /the header line " folded"/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok', /the Content-Length "3"/],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', /the Content-Length "-1"/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /the chunk size "zz"/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n', /a chunk not followed by CRLF/],
    ['HTTP/1.1 101 Switching Protocols\r\n\r\n', /101 Switching Protocols/],
  ];
  const target = await rawTarget(t, (request, socket) => {
    socket.write(cases[target.requests.indexOf(request)]?.[0] ?? '');
  });
  const made = client(t);
  for (const [, expected] of cases) await assert.rejects(post(made, target.url).response, expected);
  await eventually(() => (target.closed === cases.length ? true : undefined), 'every connection closed');
  assert.equal(target.connections, cases.length);
});

test('a body past the limit: the first bytes are kept and the connection is dropped', async (t) => {
  const long = Buffer.alloc(100 * 1024, 'x');
  const target = await rawTarget(t, (request, socket) => {
    if (target.requests.indexOf(request) === 0)
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${long.length}\r\n\r\n`);
    else socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${long.length.toString(16)}\r\n`);
    socket.write(long);
  });
  const made = client(t, { bodyLimitBytes: 1000 });
  for (const framing of ['content-length', 'chunked']) {
    const response = await post(made, target.url).response;
    assert.equal(response.body.length, 1000, framing);
    assert.equal(response.body.toString(), 'x'.repeat(1000));
  }
  assert.equal(target.connections, 2, 'neither connection was reused');
  await eventually(() => (target.closed === 2 ? true : undefined), 'both connections closed');
});

test('a connection closed in the middle of the answer fails', async (t) => {
  const target = await rawTarget(t, (_request, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort');
  });
  await assert.rejects(post(client(t), target.url).response, /closed the connection mid-answer/);
});

test('an answer sent before the request was read is taken', async (t) => {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.resume(); // Reads (and drops) the request, only to see the connection close.
    socket.end('HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const response = await post(client(t), new URL(`http://127.0.0.1:${port}/`), 'x'.repeat(1024)).response;
  assert.equal(response.status, 413);
  assert.equal(response.body.toString(), 'big');
});

test('destroy() (a timeout) rejects with its error and closes the connection', async (t) => {
  const target = await rawTarget(t, () => {
    // Never answers.
  });
  const exchange = post(client(t), target.url);
  await eventually(() => (target.requests.length === 1 ? true : undefined), 'the request arrived');
  exchange.destroy(new Error('hook request interrupted (timeout)'));
  await assert.rejects(exchange.response, /interrupted \(timeout\)/);
  await eventually(() => (target.closed === 1 ? true : undefined), 'the connection closed');
});

test('at most maxSockets connections per target; the other requests wait and are all answered', async (t) => {
  const held: Socket[] = [];
  // The first two are held until both arrived (both connections are busy), the rest answered at once.
  const target = await rawTarget(t, (_request, socket, seen) => {
    if (seen.requests.length > 2) socket.write(ok);
    else held.push(socket);
    if (held.length === 2) for (const each of held.splice(0)) each.write(ok);
  });
  const made = client(t, { maxSockets: 2 });
  const exchanges = Array.from({ length: 6 }, () => post(made, target.url));
  // A waiting request that stops leaves the queue: the others are still answered.
  const stopped = exchanges[5];
  assert.ok(stopped);
  stopped.destroy(new Error('stopped'));
  await assert.rejects(stopped.response, /stopped/);
  const bodies = await Promise.all(
    exchanges.slice(0, 5).map(async (exchange) => (await exchange.response).body.toString()),
  );
  assert.deepEqual(bodies, ['ok', 'ok', 'ok', 'ok', 'ok']);
  assert.equal(target.requests.length, 5, 'the stopped request was never sent');
  assert.equal(target.connections, 2);
});

test('a target nobody listens on fails with the connect error', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await assert.rejects(post(client(t), new URL(`http://127.0.0.1:${port}/`)).response, {
    message: `connect ECONNREFUSED 127.0.0.1:${port}`,
    code: 'ECONNREFUSED',
  });
});

test("the server's Keep-Alive timeout, less a second, bounds how long a connection idles", async (t) => {
  // timeout=1 leaves no idle time: the second request opens a new connection; timeout=60 keeps it (control).
  const target = await rawTarget(t, (request, socket) => {
    const seconds = request.connection === 0 ? 1 : 60;
    socket.write(`HTTP/1.1 200 OK\r\nKeep-Alive: timeout=${seconds}\r\nContent-Length: 2\r\n\r\nok`);
  });
  const made = client(t);
  for (let index = 0; index < 3; index++) await post(made, target.url).response;
  assert.deepEqual(
    target.requests.map((request) => request.connection),
    [0, 1, 1],
  );
});
