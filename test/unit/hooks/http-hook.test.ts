import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { formatPayload } from '../../../src/hooks/formats/index.ts';
import { captureLogger, deadUrl, gate, hooksConfig, sampleEvent, startHookServer } from './fixtures.ts';

const withAuthorization = sampleEvent('pre-create', {
  request: {
    ...sampleEvent().request,
    headers: {
      ...sampleEvent().request.headers,
      authorization: ['Bearer jwt', 'Bearer second'],
      cookie: ['session=top-secret'],
    },
  },
});

test('an HTTP hook gets a POST of the JSON with Hook-Name, Idempotency-Key and the proxied headers', async (t) => {
  const server = await startHookServer(t);
  const engine = createHookEngine(
    hooksConfig({ httpUrls: [server.url], httpProxyHeaders: ['Authorization', 'X-Absent'] }),
    captureLogger().logger,
  );

  assert.deepEqual(await engine.runBlocking(withAuthorization), { kind: 'continue' });

  const request = await server.nthRequest(1);
  const [record] = engine.runs.records();
  assert.ok(record);
  assert.equal(request.method, 'POST');
  assert.equal(request.url, '/hooks');
  assert.equal(request.headers['content-type'], 'application/json');
  assert.equal(request.headers['hook-name'], 'pre-create');
  assert.equal(request.headers['idempotency-key'], record.eventId);
  assert.match(record.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(request.headers.authorization, 'Bearer jwt', 'the first value of a proxied header');
  assert.equal(request.headers['x-absent'], undefined);
  assert.equal(request.headers.cookie, undefined, 'only the listed headers are proxied');
  assert.equal(request.body, formatPayload('default', withAuthorization));
  assert.equal(record.status, 'completed');
  assert.equal(record.httpStatus, 200);
  assert.equal(record.target, `http:${server.url}`);
});

test('every URL of one event gets the same Idempotency-Key; the next event a new one', async (t) => {
  const first = await startHookServer(t);
  const second = await startHookServer(t);
  const engine = createHookEngine(hooksConfig({ httpUrls: [first.url, second.url] }), captureLogger().logger);

  await engine.runBlocking(sampleEvent('pre-create'));
  await engine.runBlocking(sampleEvent('pre-terminate'));

  const [a1, b1, a2, b2] = await Promise.all([
    first.nthRequest(1),
    second.nthRequest(1),
    first.nthRequest(2),
    second.nthRequest(2),
  ]);
  assert.equal(a1.headers['idempotency-key'], b1.headers['idempotency-key']);
  assert.equal(a2.headers['idempotency-key'], b2.headers['idempotency-key']);
  assert.notEqual(a1.headers['idempotency-key'], a2.headers['idempotency-key']);
  assert.equal(a2.headers['hook-name'], 'pre-terminate');
});

test('a 403 answer rejects with the hook status, body and Content-Type', async (t) => {
  const server = await startHookServer(t, (_request, response) => {
    response.writeHead(403, { 'Content-Type': 'application/json' }).end('{"reason":"not allowed"}');
  });
  const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), captureLogger().logger);

  assert.deepEqual(await engine.runBlocking(sampleEvent()), {
    kind: 'reject',
    status: 403,
    body: '{"reason":"not allowed"}',
    headers: { 'Content-Type': 'application/json' },
  });
  const [record] = engine.runs.records();
  assert.equal(record?.status, 'failed');
  assert.equal(record?.httpStatus, 403);
});

test('a rejection without Content-Type is relayed as text/plain; charset=utf-8', async (t) => {
  const server = await startHookServer(t, (_request, response) => {
    response.writeHead(401).end('who are you?');
  });
  const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), captureLogger().logger);
  assert.deepEqual(await engine.runBlocking(sampleEvent()), {
    kind: 'reject',
    status: 401,
    body: 'who are you?',
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
  });
});

test('a chunked answer is read whole and relayed', async (t) => {
  const server = await startHookServer(t, (_request, response) => {
    response.writeHead(403, { 'Content-Type': 'application/json' });
    response.write('{"reason":');
    setTimeout(() => response.end('"sent in pieces"}'), 10);
  });
  const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), captureLogger().logger);
  assert.deepEqual(await engine.runBlocking(sampleEvent()), {
    kind: 'reject',
    status: 403,
    body: '{"reason":"sent in pieces"}',
    headers: { 'Content-Type': 'application/json' },
  });
});

test('an answer that is not HTTP/1.x rejects with 502 and is recorded with what was wrong', async (t) => {
  const server = await startHookServer(t, (_request, response) => {
    response.socket?.end('SSH-2.0-OpenSSH_9.6\r\n\r\n');
  });
  const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), captureLogger().logger);
  const outcome = await engine.runBlocking(sampleEvent());
  assert.equal(outcome.kind === 'reject' && outcome.status, 502);
  const [record] = engine.runs.records();
  assert.equal(record?.status, 'failed');
  assert.equal(
    record?.error,
    'invalid HTTP response from the hook target: the status line "SSH-2.0-OpenSSH_9.6"',
  );
});

test('redirects are followed; the final answer counts', async (t) => {
  const server = await startHookServer(t, (request, response) => {
    if (request.url === '/hooks') response.writeHead(307, { Location: '/moved' }).end();
    else response.writeHead(204).end();
  });
  const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), captureLogger().logger);
  assert.deepEqual(await engine.runBlocking(sampleEvent()), { kind: 'continue' });
  const moved = await server.nthRequest(2);
  assert.equal(moved.url, '/moved');
  assert.equal(moved.method, 'POST');
  assert.equal(engine.runs.records()[0]?.httpStatus, 204);
});

test('a 303 to another host is followed with a GET and no body; more than 5 redirects fail', async (t) => {
  const elsewhere = await startHookServer(t, (request, response) => {
    if (request.url === '/loop') response.writeHead(302, { Location: '/loop' }).end();
    else response.writeHead(200, { 'Content-Type': 'text/plain' }).end('moved here');
  });
  const server = await startHookServer(t, (request, response) => {
    const next = request.url === '/hooks' ? '/final' : '/loop';
    response.writeHead(303, { Location: new URL(next, elsewhere.url).href }).end('see other');
  });
  const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), captureLogger().logger);
  assert.deepEqual(await engine.runBlocking(sampleEvent()), { kind: 'continue' });
  const moved = await elsewhere.nthRequest(1);
  assert.equal(moved.method, 'GET');
  assert.equal(moved.url, '/final');
  assert.equal(moved.body, '');
  assert.equal(moved.headers['content-type'], undefined);
  assert.equal(moved.headers['hook-name'], 'pre-create', 'the other headers go along');
  assert.equal(moved.headers.host, new URL(elsewhere.url).host);

  const looping = createHookEngine(
    hooksConfig({ httpUrls: [new URL('/loop', elsewhere.url).href] }),
    captureLogger().logger,
  );
  const outcome = await looping.runBlocking(sampleEvent());
  assert.equal(outcome.kind === 'reject' && outcome.status, 502, 'the sixth 302 is the final answer');
  assert.equal(elsewhere.requests.length, 1 + 6);
});

test('a server that never answers rejects with 504 after the timeout and is recorded timed_out', async (t) => {
  const server = await startHookServer(t, () => {
    // Never answers.
  });
  const engine = createHookEngine(
    hooksConfig({ httpUrls: [server.url], httpTimeoutMs: 200 }),
    captureLogger().logger,
  );

  assert.deepEqual(await engine.runBlocking(sampleEvent()), {
    kind: 'reject',
    status: 504,
    body: 'Hook "pre-create" did not answer within 200 ms',
    headers: { 'Content-Type': 'text/plain; charset=utf-8' },
  });
  assert.equal(engine.runs.records()[0]?.status, 'timed_out');
});

test('a target nobody listens on rejects with 502', async (t) => {
  const engine = createHookEngine(hooksConfig({ httpUrls: [await deadUrl()] }), captureLogger().logger);
  const outcome = await engine.runBlocking(sampleEvent());
  assert.equal(outcome.kind === 'reject' && outcome.status, 502);
  assert.equal(
    outcome.kind === 'reject' && outcome.body,
    'Hook "pre-create" failed: the hook endpoint could not be reached',
  );
  const [record] = engine.runs.records();
  assert.equal(record?.status, 'failed');
  assert.match(record?.error ?? '', /ECONNREFUSED/);
  t.diagnostic(record?.error ?? '');
});

test('a final status outside 4xx/5xx from a blocking hook becomes 502', async (t) => {
  const server = await startHookServer(t, (_request, response) => {
    response.writeHead(304).end();
  });
  const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), captureLogger().logger);
  const outcome = await engine.runBlocking(sampleEvent());
  assert.equal(outcome.kind === 'reject' && outcome.status, 502);
});

test('a proxied header value HTTP cannot carry is left out; the hook still runs', async (t) => {
  const server = await startHookServer(t);
  const engine = createHookEngine(
    hooksConfig({ httpUrls: [server.url], httpProxyHeaders: ['X-Name', 'X-Latin1'] }),
    captureLogger().logger,
  );
  const event = sampleEvent('pre-create', {
    request: {
      ...sampleEvent().request,
      headers: { 'x-name': ['caf\u00e9 \u2615'], 'x-latin1': ['caf\u00e9'] },
    },
  });
  assert.deepEqual(await engine.runBlocking(event), { kind: 'continue' });
  const request = await server.nthRequest(1);
  assert.equal(request.headers['x-name'], undefined);
  assert.equal(Buffer.from(request.headers['x-latin1'] as string, 'latin1').toString('latin1'), 'caf\u00e9');
  assert.equal(JSON.parse(request.body).request.headers['x-name'], 'caf\u00e9 \u2615');
});

test('post hooks to a target that answers after 5 s never hold up emit()', async (t) => {
  const release = gate();
  const server = await startHookServer(t, async (_request, response) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([release.opened, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
    response.writeHead(200).end();
  });
  const engine = createHookEngine(
    hooksConfig({ httpUrls: [server.url], httpTimeoutMs: 10_000 }),
    captureLogger().logger,
  );

  const returned = engine.emit(sampleEvent('post-finish'));
  assert.equal(returned, undefined, 'emit returns synchronously, nothing to await');
  assert.equal(engine.runs.records().length, 0, 'emit returned before the hook ran');

  await server.nthRequest(1);
  assert.equal(engine.runs.records().length, 0, 'the hook is in flight while the caller goes on');
  release.open();
  const record = await engine.runs.waitFor((candidate) => candidate.event === 'post-finish');
  assert.equal(record.status, 'completed');
});

test('post hook queue overflow is logged and recorded as skipped', async (t) => {
  const release = gate();
  const server = await startHookServer(t, async (_request, response) => {
    await release.opened;
    response.writeHead(200).end();
  });
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(
    hooksConfig({ httpUrls: [server.url], postConcurrency: 1, postQueueLimit: 1 }),
    logger,
  );

  engine.emit(sampleEvent('post-receive')); // runs
  engine.emit(sampleEvent('post-receive')); // waits
  engine.emit(sampleEvent('post-finish')); // does not fit

  const skipped = await engine.runs.waitFor((record) => record.status === 'skipped');
  assert.equal(skipped.event, 'post-finish');
  assert.equal(skipped.error, 'queue full');
  assert.ok(entries.some((entry) => entry.level === 'warn' && entry.fields.eventId === skipped.eventId));

  release.open();
  const completed = await engine.runs.waitForCount((record) => record.status === 'completed', 2);
  assert.deepEqual(
    completed.map((record) => record.event),
    ['post-receive', 'post-receive'],
  );
  assert.equal(server.requests.length, 2);
  assert.deepEqual(engine.runs.totals(), { completed: 2, failed: 0, skipped: 1, timed_out: 0 });
});

test('a post hook answering non-2xx is logged at warn and recorded failed', async (t) => {
  const server = await startHookServer(t, (_request, response) => {
    response.writeHead(500).end('boom');
  });
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(hooksConfig({ httpUrls: [server.url] }), logger);
  engine.emit(sampleEvent('post-create'));
  const record = await engine.runs.waitFor((candidate) => candidate.event === 'post-create');
  assert.equal(record.status, 'failed');
  assert.equal(record.httpStatus, 500);
  const warning = entries.find((entry) => entry.level === 'warn' && entry.fields.eventId === record.eventId);
  assert.equal(warning?.fields.responseBody, 'boom');
});

test('logs never carry header values such as authorization or cookie', async (t) => {
  const server = await startHookServer(t, (_request, response) => {
    response.writeHead(403).end('no');
  });
  const { logger, entries } = captureLogger();
  const engine = createHookEngine(
    hooksConfig({ httpUrls: [server.url], httpProxyHeaders: ['Authorization'] }),
    logger,
  );
  await engine.runBlocking(withAuthorization);
  engine.emit({ ...withAuthorization, name: 'post-create' });
  await engine.runs.waitFor((record) => record.event === 'post-create');
  assert.ok(entries.length > 0);
  const logged = JSON.stringify(entries);
  assert.equal(logged.includes('Bearer jwt'), false);
  assert.equal(logged.includes('top-secret'), false);
});

test('a proxied header that frames the body or the connection is refused at start, naming it', async () => {
  const { logger } = captureLogger();
  const url = await deadUrl();
  // Positive control: an ordinary header is accepted.
  assert.ok(createHookEngine(hooksConfig({ httpUrls: [url], httpProxyHeaders: ['Authorization'] }), logger));
  assert.throws(
    () =>
      createHookEngine(
        hooksConfig({
          httpUrls: [url],
          httpProxyHeaders: ['Authorization', 'Transfer-Encoding', 'connection'],
        }),
        logger,
      ),
    /--hooks-http-proxy-headers: Transfer-Encoding, connection cannot be copied onto a hook request/,
  );
});
