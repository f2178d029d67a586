import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Socket } from 'node:net';
import { test } from 'node:test';
import { connect } from 'amqplib';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { AmqpHookTransport } from '../../src/hooks/transports/amqp.ts';
import type { HookDelivery } from '../../src/hooks/transports/types.ts';
import { amqpUrl } from '../support/brokers.ts';

function delivery(signal: AbortSignal, index: number): HookDelivery {
  const eventId = randomUUID();
  return {
    eventId,
    event: 'post-finish',
    hook: 'post-finish',
    uploadId: `upload-${index}`,
    sequence: 1,
    payload: JSON.stringify({ eventId, index }),
    request: { uri: '/files/', method: 'PATCH', remoteAddr: null, headers: {} },
    signal,
  };
}

/**
 * Counts the writes Node hands to the operating system for sockets to the broker's port (`_write` and `_writev`
 * are where a net.Socket's stream writes become system calls), from now until the returned stop is called.
 */
function countSocketWrites(port: number): { readonly writes: () => number; stop(): void } {
  const prototype = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>;
  const original = { _write: prototype._write, _writev: prototype._writev };
  let writes = 0;
  for (const name of ['_write', '_writev'] as const) {
    prototype[name] = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === port) writes += 1;
      return original[name].apply(this, args);
    };
  }
  return {
    writes: () => writes,
    stop: () => {
      prototype._write = original._write;
      prototype._writev = original._writev;
    },
  };
}

test('AMQP hook messages published in one turn of the event loop reach the broker in one socket write, and all arrive', async (t) => {
  const url = new URL(amqpUrl);
  const queue = `wharf-test-batched-${randomUUID().slice(0, 8)}`;
  const parsed = parseCommandLine([
    '--hooks-amqp-url',
    amqpUrl,
    '--hooks-amqp-routing-key',
    queue,
    '--hooks-amqp-declare-queues',
    '--hooks-amqp-channel-pool-size',
    '16',
  ]);
  const amqp = buildConfig(parsed.options, {}).hooks.amqp;
  assert.ok(amqp !== undefined);
  // The default exchange routes to the queue named by the routing key.
  const transport = new AmqpHookTransport({ ...amqp, exchange: '' });
  t.after(() => transport.close());
  const consumer = await connect(amqpUrl);
  t.after(() => consumer.close());
  const inspect = await consumer.createChannel();
  t.after(() => inspect.deleteQueue(queue).catch(() => {}));
  const signal = new AbortController().signal;

  // Connected, queue declared, and eight channels open (each publish holds one until its confirm).
  await transport.open();
  const warmUp = await Promise.all(
    Array.from({ length: 8 }, (_, index) => transport.deliver(delivery(signal, index))),
  );
  assert.ok(
    warmUp.every((result) => result.kind === 'delivered'),
    JSON.stringify(warmUp),
  );

  const counter = countSocketWrites(Number(url.port || 5672));
  t.after(() => counter.stop());
  // Eight events handed over in one turn, as the outbox starts the lanes that are ready.
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, index) => transport.deliver(delivery(signal, 8 + index))),
  );
  counter.stop();
  assert.ok(
    results.every((result) => result.kind === 'delivered'),
    JSON.stringify(results),
  );
  // Eight messages, one write (a heartbeat may add one); one write per message before.
  assert.ok(
    counter.writes() >= 1 && counter.writes() <= 2,
    `${counter.writes()} socket writes for 8 messages`,
  );
  const { messageCount } = await inspect.checkQueue(queue);
  assert.equal(messageCount, 16);
});
