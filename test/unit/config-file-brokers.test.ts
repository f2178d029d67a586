import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateWharfFile } from '../../src/config/config-file.ts';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';

function brokerHook(raw: unknown, args: readonly string[] = []) {
  const config = buildConfig(parseCommandLine(args).options, {});
  const file = validateWharfFile(raw, '/etc/wharf/wharf.yaml', '/files', config.hooks);
  return file.hooks[0];
}

test('a named amqp hook starts from the flag defaults and overrides what it sets', () => {
  const hook = brokerHook({
    hooks: { events: { transport: 'amqp', url: 'amqp://a:b@mq:5672', exchange: 'uploads', timeout: 3 } },
  });
  assert.equal(hook?.amqp?.url, 'amqp://a:b@mq:5672');
  assert.equal(hook?.amqp?.exchange, 'uploads');
  assert.equal(hook?.amqp?.queuesPrefix, 'rustus');
  assert.equal(hook?.amqp?.exchangeKind, 'topic');
  assert.equal(hook?.amqp?.publishTimeoutMs, 3000);
  assert.equal(hook?.amqp?.declareQueues, false);
});

test('with --hooks-amqp-url set, a named amqp hook inherits every --hooks-amqp-* setting it leaves out', () => {
  const hook = brokerHook({ hooks: { events: { transport: 'amqp', routingKey: 'all-events' } } }, [
    '--hooks-amqp-url',
    'amqp://mq:5672',
    '--hooks-amqp-queues-prefix',
    'wharf',
    '--hooks-amqp-declare-queues',
  ]);
  assert.equal(hook?.amqp?.url, 'amqp://mq:5672');
  assert.equal(hook?.amqp?.queuesPrefix, 'wharf');
  assert.equal(hook?.amqp?.declareQueues, true);
  assert.equal(hook?.amqp?.routingKey, 'all-events');
});

test('a named kafka hook takes brokers as a list or a comma-separated string', () => {
  const hook = brokerHook({
    hooks: { stream: { transport: 'kafka', brokers: 'k1:9092, k2:9092', prefix: 'uploads' } },
  });
  assert.deepEqual(hook?.kafka?.brokers, ['k1:9092', 'k2:9092']);
  assert.equal(hook?.kafka?.prefix, 'uploads');
  assert.equal(hook?.kafka?.requiredAcks, -1);
  assert.throws(
    () => brokerHook({ hooks: { stream: { transport: 'kafka', brokers: ['nohost'], retries: 2 } } }),
    (error: Error) => {
      assert.match(error.message, /hooks\.stream\.brokers: must list host:port addresses/);
      assert.match(error.message, /hooks\.stream\.retries: broker hooks are retried by the outbox/);
      return true;
    },
  );
});
