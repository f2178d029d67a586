import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { rustusEventNames } from '../../src/hooks/events.ts';
import { kafkaBrokers, kafkaConsumer, uploadLifecycle } from '../support/brokers.ts';
import { hookSchemaErrors } from '../support/hook-payload-validator.ts';
import { startWharf } from '../support/wharf-process.ts';

function tag(): string {
  return randomUUID().slice(0, 8);
}

describe('Kafka hooks against a Kafka broker', () => {
  test('topic mode: every event in one topic, key = upload id, header event-id, schema-valid payload', async () => {
    const topic = `wharf-test-${tag()}`;
    const consumer = await kafkaConsumer([topic]);
    const wharf = await startWharf({
      args: [
        '--hooks-kafka-urls',
        kafkaBrokers.join(','),
        '--hooks-kafka-topic',
        topic,
        '--hooks-kafka-compression',
        'gzip',
      ],
    });
    try {
      const uploadId = await uploadLifecycle(wharf.endpoint, 'kafka.bin');
      const records = await consumer.take(rustusEventNames.length);
      const seen = new Set<string>();
      for (const record of records) {
        assert.equal(record.topic, topic);
        const payload = JSON.parse(record.value) as {
          upload: { id: string; metadata: Record<string, string> };
        };
        assert.deepEqual(hookSchemaErrors('default', payload), []);
        assert.equal(payload.upload.metadata.filename, 'kafka.bin');
        assert.equal(record.key, payload.upload.id);
        seen.add(record.headers['hook-name'] ?? '');
        assert.match(record.headers['event-id'] ?? '', /^[0-9a-f-]{36}$/);
      }
      assert.deepEqual([...seen].sort(), [...rustusEventNames].sort());
      assert.ok(
        records
          .filter((record) => record.headers['hook-name'] !== 'pre-create')
          .every((r) => r.key === uploadId),
      );
      assert.equal(new Set(records.map((record) => record.headers['event-id'])).size, records.length);
    } finally {
      await wharf.stop();
      await consumer.close();
    }
  });

  test('prefix mode: topic {prefix}-{event}', async () => {
    const prefix = `wharf-test-${tag()}`;
    const topics = rustusEventNames.map((event) => `${prefix}-${event}`);
    const consumer = await kafkaConsumer(topics);
    const wharf = await startWharf({
      args: [
        '--hooks-kafka-urls',
        kafkaBrokers.join(','),
        '--hooks-kafka-prefix',
        prefix,
        '--hooks-format',
        'tusd',
      ],
    });
    try {
      await uploadLifecycle(wharf.endpoint);
      const records = await consumer.take(rustusEventNames.length);
      assert.deepEqual(records.map((record) => record.topic).sort(), [...topics].sort());
      for (const record of records) {
        assert.equal(record.topic, `${prefix}-${record.headers['hook-name']}`);
        assert.deepEqual(hookSchemaErrors('tusd', JSON.parse(record.value)), []);
      }
    } finally {
      await wharf.stop();
      await consumer.close();
    }
  });

  test('a compression the client cannot produce is a clear startup error', async () => {
    await assert.rejects(
      startWharf({
        args: ['--hooks-kafka-urls', kafkaBrokers.join(','), '--hooks-kafka-compression', 'zstd'],
      }),
      /Kafka compression "zstd" is not available/,
    );
  });
});
