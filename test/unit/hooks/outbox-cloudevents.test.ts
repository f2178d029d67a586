import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Outbox } from '../../../src/hooks/delivery/outbox.ts';
import { FileOutboxStore } from '../../../src/hooks/delivery/outbox-file-store.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from '../../../src/hooks/transports/types.ts';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

function outbox(transport: HookTransport, directory: string, signal: AbortSignal): Outbox {
  return new Outbox(new Map([['t', transport]]), {
    store: new FileOutboxStore(directory),
    limit: 100,
    concurrency: 1,
    initialBackoffMs: 5,
    maxBackoffMs: 20,
    logger: quiet,
    signal,
    deliver: (target, delivery) => target.deliver(delivery),
  });
}

test('a CloudEvents binary delivery keeps its attributes through the outbox journal and a restart', async (t) => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-ce-'));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const attributes = {
    specversion: '1.0',
    id: 'event-1',
    source: 'https://files.example.com/files/',
    type: 'io.wharf.upload.post-finish',
    subject: 'upload-1',
    time: '2026-11-25T18:00:00.000Z',
  };
  const delivery: HookDelivery = {
    eventId: 'event-1',
    event: 'post-finish',
    hook: 'post-finish',
    uploadId: 'upload-1',
    payload: '{"upload":{},"request":{}}',
    request: { uri: '/files/upload-1/', method: 'PATCH', remoteAddr: null, headers: {} },
    signal: new AbortController().signal,
    cloudEvent: { mode: 'binary', attributes },
  };

  // The first process cannot reach the target and stops with the event still owed.
  const firstStop = new AbortController();
  const down: HookTransport = {
    describe: () => 't',
    deliver: async (): Promise<DeliveryResult> => ({ kind: 'unreachable', detail: 'down' }),
  };
  const first = outbox(down, directory, firstStop.signal);
  assert.equal(await first.add('t', delivery), true);
  firstStop.abort();
  await first.close();

  // The next one delivers it with the same envelope.
  const accepted: HookDelivery[] = [];
  const up: HookTransport = {
    describe: () => 't',
    deliver: async (sent): Promise<DeliveryResult> => {
      accepted.push(sent);
      return { kind: 'delivered' };
    },
  };
  const second = outbox(up, directory, new AbortController().signal);
  await second.ready();
  await second.idle();
  await second.close();
  assert.equal(accepted.length, 1);
  assert.deepEqual(accepted[0]?.cloudEvent, { mode: 'binary', attributes });
  assert.equal(accepted[0]?.payload, delivery.payload);
});
