import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { buildConfig, parseCommandLine } from '../../../src/config/load.ts';
import { createHookEngine } from '../../../src/hooks/compose-hooks.ts';
import { sampleEvent, temporaryDirectory } from './fixtures.ts';

/** A loopback port nothing listens on (taken from a listener that closed): a target that is down. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

test('the outbox journal keeps of the request only the headers a target sends on: none for a broker, the proxied ones for HTTP', async (context) => {
  const directory = await temporaryDirectory(context);
  const [amqpPort, httpPort] = [await closedPort(), await closedPort()];
  const parsed = parseCommandLine([
    '--data-dir',
    directory,
    '--hooks',
    'post-finish',
    '--hooks-amqp-url',
    `amqp://guest:guest@127.0.0.1:${amqpPort}`,
    '--hooks-http-urls',
    `http://127.0.0.1:${httpPort}/hooks`,
    '--hooks-http-proxy-headers',
    'X-Forwarded-For',
  ]);
  const config = buildConfig(parsed.options, {});
  const engine = createHookEngine(config.hooks, quiet);
  context.after(() => engine.close());
  const base = sampleEvent('post-finish');
  engine.emit({
    ...base,
    request: {
      ...base.request,
      method: 'PATCH',
      headers: {
        ...base.request.headers,
        authorization: ['Bearer secret-token-of-the-client'],
        'x-forwarded-for': ['127.0.0.7'],
      },
    },
  });
  // Both targets are down: the event stays owed, in the journal, for each of them.
  const journal = path.join(config.hooks.outboxDirectory ?? '', 'journal.jsonl');
  let lines: {
    t: string;
    entry: { target: string; delivery: { payloadJson: object; request: { headers: object } } };
  }[] = [];
  for (let waited = 0; lines.length < 2 && waited < 200; waited++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const text = await readFile(journal, 'utf8').catch(() => '');
    lines = text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line))
      .filter((line) => line.t === 'add');
  }
  assert.equal(lines.length, 2, 'one owed entry per target');
  const byTarget = new Map(lines.map((line) => [line.entry.target.split(':')[0], line.entry]));
  // The payload, what a receiver gets, still carries every header (rustus's format).
  // (The journal keeps the payload as the JSON it is: `payloadJson`, see outbox-journal.ts.)
  for (const entry of byTarget.values()) {
    assert.match(JSON.stringify(entry.delivery.payloadJson), /secret-token-of-the-client/);
    assert.match(JSON.stringify(entry.delivery.payloadJson), /127\.0\.0\.7/);
  }
  assert.deepEqual(byTarget.get('amqp')?.delivery.request.headers, {});
  assert.deepEqual(byTarget.get('http')?.delivery.request.headers, { 'x-forwarded-for': ['127.0.0.7'] });
});
