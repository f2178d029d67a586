import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { AmqpChannelPool, type AmqpPoolOptions } from '../../src/hooks/transports/amqp-pool.ts';
import { amqpUrl, rabbitmqNode } from '../support/brokers.ts';

const run = promisify(execFile);

function pool(options: Partial<AmqpPoolOptions> = {}): AmqpChannelPool {
  return new AmqpChannelPool({
    url: amqpUrl,
    connectionPoolSize: 1,
    channelPoolSize: 2,
    idleConnectionTimeoutMs: undefined,
    idleChannelTimeoutMs: undefined,
    connectTimeoutMs: 5000,
    prepare: async () => {},
    ...options,
  });
}

async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; !condition(); attempt++) {
    assert.ok(attempt < 200, what);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('AMQP channel pool against RabbitMQ', () => {
  test('opens at most connection-pool-size connections and channel-pool-size channels each; a caller beyond waits', async (t) => {
    const channels = pool();
    t.after(() => channels.close());
    const first = await channels.acquire();
    const second = await channels.acquire();
    assert.notEqual(first.channel, second.channel);
    let third: Awaited<ReturnType<AmqpChannelPool['acquire']>> | undefined;
    const waiting = channels.acquire().then((channel) => {
      third = channel;
      return channel;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(third, undefined, 'the third caller waits for a channel');
    channels.release(first);
    assert.equal((await waiting).channel, first.channel, 'and gets the one given back');
    assert.equal(channels.openConnections, 1);
  });

  test('callers that arrive together while the first connection opens share it (connection-pool-size holds)', async (t) => {
    const channels = pool();
    t.after(() => channels.close());
    const [first, second] = await Promise.all([channels.acquire(), channels.acquire()]);
    assert.notEqual(first.channel, second.channel);
    assert.equal(first.connection, second.connection);
    assert.equal(channels.openConnections, 1);
  });

  test('keepConnections(false) (a replaced hook): connections close once unused, a later publish still works, true keeps them again', async (t) => {
    const channels = pool();
    t.after(() => channels.close());
    channels.release(await channels.acquire());
    assert.equal(channels.openConnections, 1, 'positive control: kept');
    const inUse = await channels.acquire();
    channels.keepConnections(false);
    assert.equal(channels.openConnections, 1, 'a connection with a channel in use stays');
    channels.release(inUse);
    assert.equal(channels.openConnections, 0, 'closed once its channel came back');
    // An event stored for the replaced declaration, retried: a connection for it, closed after it.
    const late = await channels.acquire();
    await late.channel.checkExchange('amq.direct');
    channels.release(late);
    assert.equal(channels.openConnections, 0);
    channels.keepConnections(true);
    channels.release(await channels.acquire());
    assert.equal(channels.openConnections, 1, 'kept again');
  });

  test('closes idle channels and connections after their timeouts, and reopens on demand', async (t) => {
    const channels = pool({ idleChannelTimeoutMs: 200, idleConnectionTimeoutMs: 300 });
    t.after(() => channels.close());
    channels.release(await channels.acquire());
    assert.equal(channels.openConnections, 1);
    await eventually(() => channels.openConnections === 0, 'the idle connection is closed');
    channels.release(await channels.acquire());
    assert.equal(channels.openConnections, 1);
  });

  test('a connection the broker closes is replaced on the next acquire', async (t) => {
    let prepared = 0;
    const name = `wharf-pool-test-${process.pid}-${Date.now()}`;
    const channels = pool({
      connectionName: name,
      prepare: async () => {
        prepared += 1;
      },
    });
    t.after(() => channels.close());
    channels.release(await channels.acquire());
    // Close only this pool's connection: other test files share the broker.
    const { stdout } = await run('rabbitmqctl', [
      '-q',
      '-n',
      rabbitmqNode,
      'list_connections',
      'pid',
      'client_properties',
    ]);
    const line = stdout.split('\n').find((candidate) => candidate.includes(name));
    assert.ok(line, 'the pool connection is listed under its name');
    const connection = line.split('\t')[0] ?? '';
    await run('rabbitmqctl', ['-q', '-n', rabbitmqNode, 'close_connection', connection, 'wharf pool test']);
    await eventually(() => channels.openConnections === 0, 'the closed connection is dropped');
    const again = await channels.acquire();
    channels.release(again);
    assert.equal(channels.openConnections, 1);
    assert.equal(prepared, 2, 'declarations run again on the new connection');
  });
});
