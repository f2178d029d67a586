import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { test } from 'node:test';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { AmqpHookTransport } from '../../src/hooks/transports/amqp.ts';
import type { HookDelivery } from '../../src/hooks/transports/types.ts';
import { amqpUrl } from '../support/brokers.ts';

/**
 * A TCP proxy to the broker that can stop passing the broker's bytes on (`hold`: a publish is sent, its confirm
 * never arrives) and cut every connection (`cut`).
 */
async function holdingProxy(
  target: URL,
): Promise<{ port: number; hold(): void; cut(): void; close(): void }> {
  const sockets = new Set<Socket>();
  let holding = false;
  const server = createServer((client) => {
    const broker = tcpConnect(Number(target.port || 5672), target.hostname);
    sockets.add(client);
    sockets.add(broker);
    client.on('data', (chunk) => broker.write(chunk));
    broker.on('data', (chunk) => {
      if (!holding) client.write(chunk);
    });
    for (const socket of [client, broker]) {
      socket.on('error', () => {});
      socket.on('close', () => {
        client.destroy();
        broker.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    hold: () => {
      holding = true;
    },
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () => server.close(),
  };
}

function delivery(signal: AbortSignal): HookDelivery {
  const eventId = randomUUID();
  return {
    eventId,
    event: 'post-finish',
    hook: 'post-finish',
    uploadId: 'u1',
    payload: JSON.stringify({ eventId }),
    request: { uri: '/files/u1', method: 'PATCH', remoteAddr: null, headers: {} },
    signal,
  };
}

/**
 * An AMQP transport to RabbitMQ through `proxy`, publishing to a queue of its own (`name`) through the default
 * exchange, which routes to the queue named by the routing key.
 */
function transportThrough(
  proxy: { port: number },
  name: string,
  publishTimeoutMs: number,
): AmqpHookTransport {
  const url = new URL(amqpUrl);
  const parsed = parseCommandLine([
    '--hooks-amqp-url',
    `amqp://${url.username}:${url.password}@127.0.0.1:${proxy.port}`,
    '--hooks-amqp-routing-key',
    `wharf-test-${name}-${randomUUID().slice(0, 8)}`,
    '--hooks-amqp-declare-queues',
    '--hooks-amqp-auto-delete',
  ]);
  const amqp = buildConfig(parsed.options, {}).hooks.amqp;
  assert.ok(amqp !== undefined);
  return new AmqpHookTransport({ ...amqp, exchange: '', publishTimeoutMs });
}

test('a publish whose confirm is lost with the connection fails as unreachable (retried by the outbox)', async (t) => {
  const proxy = await holdingProxy(new URL(amqpUrl));
  t.after(() => proxy.close());
  // A publish timeout far longer than the test: a lost confirm must end the publish by the channel's close.
  const transport = transportThrough(proxy, 'confirm-lost', 15_000);
  t.after(() => transport.close());
  const signal = new AbortController().signal;
  // Positive control: through the proxy the broker confirms.
  assert.deepEqual(await transport.deliver(delivery(signal)), { kind: 'delivered' });
  proxy.hold();
  const lost = transport.deliver(delivery(signal));
  await new Promise((resolve) => setTimeout(resolve, 200));
  proxy.cut();
  const result = await lost;
  assert.equal(result.kind, 'unreachable', JSON.stringify(result));
});

test('publishes whose confirms never come time out, each in its turn, and the connection is not waited for', async (t) => {
  const proxy = await holdingProxy(new URL(amqpUrl));
  t.after(() => proxy.close());
  const transport = transportThrough(proxy, 'confirm-late', 400);
  // Cut, not closed: a channel given up on waits for the broker's close-ok, which the held proxy never passes on.
  t.after(() => proxy.cut());
  const signal = new AbortController().signal;
  assert.deepEqual(await transport.deliver(delivery(signal)), { kind: 'delivered' });
  // The broker's answers stop: neither publish is confirmed, the second sent a while after the first.
  proxy.hold();
  const order: string[] = [];
  const first = transport.deliver(delivery(signal)).then((result) => {
    order.push('first');
    return result;
  });
  await new Promise((resolve) => setTimeout(resolve, 150));
  const second = transport.deliver(delivery(signal)).then((result) => {
    order.push('second');
    return result;
  });
  assert.deepEqual(await first, { kind: 'timed_out', timeoutMs: 400 });
  assert.deepEqual(await second, { kind: 'timed_out', timeoutMs: 400 });
  assert.deepEqual(order, ['first', 'second']);
});
