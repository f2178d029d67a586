import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RunLog, type RunRecord } from '../../../src/hooks/history/run-log.ts';
import { AdminStream } from '../../../src/server/admin/sse.ts';

function run(index: number): RunRecord {
  return {
    eventId: `event-${index}`,
    event: 'post-finish',
    hook: 'post-finish',
    target: 'http:http://127.0.0.1:9/hooks',
    uploadId: 'upload',
    blocking: false,
    status: 'completed',
    startedAt: Date.now(),
    durationMs: 1,
    output: 'x'.repeat(200),
  };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > 10_000) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

test('the stream sends run events, drops a client that does not read, and stops listening when none is left', async () => {
  const runs = new RunLog(10);
  const stream = new AdminStream({
    runs,
    delivery: undefined,
    endpoints: () => [],
    showRun: (record) => record,
    showNotice: (notice) => notice,
    maxBufferedBytes: 64 * 1024,
  });
  const server = createServer((req, res) => stream.attach(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    // A reader that keeps up.
    const reader = connect(port, '127.0.0.1');
    let read = '';
    reader.on('data', (chunk: Buffer) => {
      if (read.length < 4096) read += chunk.toString();
    });
    reader.write('GET /admin/api/stream HTTP/1.1\r\nHost: x\r\n\r\n');
    // A reader that never reads: its socket and then Wharf's buffer fill up.
    const stalled = connect(port, '127.0.0.1');
    stalled.write('GET /admin/api/stream HTTP/1.1\r\nHost: x\r\n\r\n');
    stalled.pause();
    let stalledClosed = false;
    // Wharf resets the connection of a client it drops.
    stalled.on('error', () => undefined);
    stalled.on('close', () => {
      stalledClosed = true;
    });
    await until(() => stream.clients === 2, 'two clients');

    runs.add(run(0));
    await until(() => read.includes('event: run\ndata: {"eventId":"event-0"'), 'the first run event');

    for (let index = 1; index < 40_000 && stream.clients === 2; index++) {
      runs.add(run(index));
      if (index % 100 === 0) await sleep(2);
    }
    await until(() => stream.clients === 1, 'the stalled client to be dropped');
    assert.equal(reader.destroyed, false, 'the client that reads is kept');
    stalled.resume();
    await until(() => stalledClosed, 'the stalled socket to close');

    reader.destroy();
    await until(() => stream.clients === 0, 'the reader to detach');
    // With nobody listening, new runs are not serialised for anyone.
    runs.add(run(-1));
    assert.equal(stream.clients, 0);
  } finally {
    stream.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
