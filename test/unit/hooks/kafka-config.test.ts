import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildConfig } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/config/option-table.ts';
import {
  type KafkaHooksConfig,
  kafkaClientSettings,
  kafkaTopic,
  parseKafkaExtraOptions,
} from '../../../src/hooks/transports/kafka.ts';

describe('Kafka hook configuration', () => {
  test('topic choice follows rustus: prefix-event, the topic, or the event name', () => {
    assert.equal(kafkaTopic({ prefix: 'up', topic: undefined }, 'post-finish'), 'up-post-finish');
    assert.equal(kafkaTopic({ prefix: undefined, topic: 'all' }, 'post-finish'), 'all');
    assert.equal(kafkaTopic({ prefix: 'up', topic: 'all' }, 'post-finish'), 'up-all');
    assert.equal(kafkaTopic({ prefix: undefined, topic: undefined }, 'pre-create'), 'pre-create');
  });

  test('extra options: values may hold "=", empty segments are ignored', () => {
    assert.deepEqual(parseKafkaExtraOptions('a=1;sasl.password=x=y;;'), { a: '1', 'sasl.password': 'x=y' });
    assert.throws(() => parseKafkaExtraOptions('novalue'), /not key=value/);
  });

  test('RUSTUS_* variables configure it; unknown extra options and acks are refused at startup', () => {
    const config = buildConfig(
      {},
      {
        RUSTUS_HOOKS_KAFKA_URLS: 'localhost:9094',
        RUSTUS_HOOKS_KAFKA_PREFIX: 'pref',
        RUSTUS_HOOKS_KAFKA_REQUIRED_ACKS: '1',
        RUSTUS_HOOKS_KAFKA_IDLE_TIMEOUT: '10',
        RUSTUS_HOOKS_KAFKA_SEND_TIMEOUT: '5',
        RUSTUS_HOOKS_KAFKA_EXTRA_OPTIONS: 'allow.auto.create.topics=true;security.protocol=plaintext',
      },
    );
    assert.deepEqual(config.hooks.kafka?.brokers, ['localhost:9094']);
    assert.equal(config.hooks.kafka?.requiredAcks, 1);
    assert.equal(config.hooks.kafka?.idleTimeoutMs, 10_000);
    assert.equal(config.hooks.kafka?.sendTimeoutMs, 5000);
    assert.throws(
      () =>
        buildConfig(
          {},
          { WHARF_HOOKS_KAFKA_URLS: 'k:1', WHARF_HOOKS_KAFKA_EXTRA_OPTIONS: 'socket.nagle.disable=true' },
        ),
      (error: unknown) => error instanceof ConfigError && /socket\.nagle\.disable/.test(error.message),
    );
    assert.throws(
      () => buildConfig({}, { WHARF_HOOKS_KAFKA_URLS: 'k:1', WHARF_HOOKS_KAFKA_REQUIRED_ACKS: '2' }),
      ConfigError,
    );
    assert.equal(buildConfig({}, {}).hooks.kafka, undefined);
  });

  test('linger.ms, batch.num.messages and batch.size shape the produce requests, with librdkafka defaults', () => {
    const config = (extraOptions: Record<string, string>): KafkaHooksConfig => ({
      brokers: ['k:1'],
      clientId: undefined,
      topic: 'all',
      prefix: undefined,
      requiredAcks: -1,
      compression: 'none',
      idleTimeoutMs: undefined,
      sendTimeoutMs: 5000,
      extraOptions,
    });
    assert.deepEqual(kafkaClientSettings(config({})).batching, {
      lingerMs: 5,
      maxMessages: 10_000,
      maxBytes: 1_000_000,
    });
    assert.deepEqual(
      kafkaClientSettings(config({ 'linger.ms': '0', 'batch.num.messages': '100', 'batch.size': '65536' }))
        .batching,
      { lingerMs: 0, maxMessages: 100, maxBytes: 65_536 },
    );
    assert.equal(kafkaClientSettings(config({ 'queue.buffering.max.ms': '20' })).batching.lingerMs, 20);
    assert.throws(() => kafkaClientSettings(config({ 'linger.ms': 'soon' })), /must be an integer/);
    // librdkafka's 0 means no limit, which Wharf cannot give: refused, named (a time is taken, positive control).
    assert.equal(kafkaClientSettings(config({ 'message.timeout.ms': '2500' })).sendTimeoutMs, 2500);
    for (const key of ['message.timeout.ms', 'delivery.timeout.ms'])
      assert.throws(() => kafkaClientSettings(config({ [key]: '0' })), new RegExp(`${key}=0 \\(no limit`));
    assert.equal(kafkaClientSettings(config({ 'enable.idempotence': 'true' })).client.idempotent, true);
    assert.throws(
      () => kafkaClientSettings(config({ 'enable.idempotence': 'true', acks: '1' })),
      /enable\.idempotence=true needs acks all/,
    );
  });

  test('librdkafka security and retry options map onto the client; an unknown SASL mechanism is refused', () => {
    const config = (extraOptions: Record<string, string>): KafkaHooksConfig => ({
      brokers: ['k:1'],
      clientId: undefined,
      topic: 'all',
      prefix: undefined,
      requiredAcks: -1,
      compression: 'none',
      idleTimeoutMs: undefined,
      sendTimeoutMs: 5000,
      extraOptions,
    });
    const { client } = kafkaClientSettings(
      config({
        'security.protocol': 'SASL_SSL',
        'sasl.mechanisms': 'SCRAM-SHA-512',
        'sasl.username': 'wharf',
        'sasl.password': 'pw',
        'enable.ssl.certificate.verification': 'false',
        'message.send.max.retries': '5',
        'retry.backoff.ms': '250',
        'bootstrap.servers': 'a:1, b:2',
      }),
    );
    assert.deepEqual(client.sasl, { mechanism: 'SCRAM-SHA-512', username: 'wharf', password: 'pw' });
    assert.deepEqual(client.tls, { rejectUnauthorized: false });
    assert.equal(client.retries, 5);
    assert.equal(client.retryDelay, 250);
    assert.deepEqual(client.bootstrapBrokers, ['a:1', 'b:2']);
    assert.equal(kafkaClientSettings(config({ 'security.protocol': 'plaintext' })).client.tls, undefined);
    assert.throws(
      () =>
        kafkaClientSettings(
          config({ 'sasl.mechanism': 'GSSAPI', 'sasl.username': 'u', 'sasl.password': 'p' }),
        ),
      /SASL mechanism "gssapi" is not supported/,
    );
  });
});
