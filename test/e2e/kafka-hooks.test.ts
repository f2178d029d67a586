import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { rustusEventNames } from '../../src/hooks/events.ts';
import { ensureZstdCodec } from '../../src/hooks/transports/kafka.ts';
import { createKafkaTopics, kafkaBrokers, kafkaConsumer, uploadLifecycle } from '../support/brokers.ts';
import { hookSchemaErrors } from '../support/hook-payload-validator.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf } from '../support/wharf-process.ts';

function tag(): string {
  return randomUUID().slice(0, 8);
}

/** Wharf's arguments for Kafka hooks into one topic of the test broker. */
function topicArgs(topic: string): string[] {
  return ['--hooks-kafka-urls', kafkaBrokers.join(','), '--hooks-kafka-topic', topic];
}

describe('Kafka hooks against a Kafka broker', () => {
  test('topic mode: every event in one topic, key = upload id, header event-id, schema-valid payload', async () => {
    const topic = `wharf-test-${tag()}`;
    const consumer = await kafkaConsumer([topic]);
    const wharf = await startWharf({
      args: [...topicArgs(topic), '--hooks-kafka-compression', 'gzip'],
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

  test('40 uploads at once: every event arrives once and in order; a record the topic refuses fails alone', async () => {
    // Events that arrive while a produce request is on its way leave together in the next one. A topic that
    // takes records of at most 4 KB refuses the events of an upload with 6 KB of metadata: those must fail on
    // their own, and the events of the uploads batched with them must still arrive.
    const topic = `wharf-test-${tag()}`;
    await createKafkaTopics([topic], { 'max.message.bytes': '4096' });
    const consumer = await kafkaConsumer([topic]);
    const wharf = await startWharf({
      // The refused upload's events are still owed when the test ends: stopping waits 1 s for them, not 10.
      args: [...topicArgs(topic), '--hooks', 'post-create,post-finish', '--shutdown-timeout', '0'],
    });
    try {
      const upload = async (name: string): Promise<string> => {
        const body = Buffer.from(`the bytes of ${name}`);
        const url = await createUpload(wharf.endpoint, {
          'Upload-Length': body.length,
          'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')}`,
        });
        const reply = await send('PATCH', url, { headers: { ...tus, ...octets, 'Upload-Offset': 0 }, body });
        assert.equal(reply.status, 204);
        return url.replace(/\/$/, '').split('/').pop() ?? '';
      };
      const names = Array.from({ length: 40 }, (_, index) => `file-${index}.bin`);
      const tooLarge = 'x'.repeat(6000);
      const [refusedId, ...ids] = await Promise.all([upload(tooLarge), ...names.map(upload)]);
      const records = await consumer.take(ids.length * 2);
      const hooksByUpload = new Map<string, string[]>();
      for (const record of records) {
        hooksByUpload.set(record.key, [
          ...(hooksByUpload.get(record.key) ?? []),
          record.headers['hook-name'] ?? '',
        ]);
      }
      assert.deepEqual([...hooksByUpload.keys()].sort(), [...ids].sort());
      for (const hooks of hooksByUpload.values()) assert.deepEqual(hooks, ['post-create', 'post-finish']);
      assert.equal(hooksByUpload.has(refusedId ?? ''), false);
      const refusals = wharf.logs.filter((entry) => entry.status === 'failed');
      assert.ok(refusals.length > 0);
      for (const entry of refusals) {
        assert.equal(entry.uploadId, refusedId);
        assert.match(String(entry.error), /MESSAGE_TOO_LARGE/);
      }
    } finally {
      await wharf.stop();
      await consumer.close();
    }
  });

  test('every compression rustus offers (gzip, snappy, lz4, zstd) delivers hook records a consumer reads', async () => {
    // On a Node whose zlib has no zstd (20), Wharf and this test's consumer both use the WebAssembly codec.
    await ensureZstdCodec();
    const codecs = ['gzip', 'snappy', 'lz4', 'zstd'];
    await Promise.all(
      codecs.map(async (codec) => {
        const topic = `wharf-test-${codec}-${tag()}`;
        const consumer = await kafkaConsumer([topic]);
        // One codec through its flag, another through librdkafka's compression.codec extra option.
        const compression =
          codec === 'lz4'
            ? ['--hooks-kafka-extra-options', 'compression.codec=lz4;linger.ms=1']
            : ['--hooks-kafka-compression', codec];
        try {
          const wharf = await startWharf({
            args: [...topicArgs(topic), ...compression, '--hooks', 'post-create,post-finish'],
          });
          try {
            const uploadId = await uploadLifecycle(wharf.endpoint, `${codec}.bin`);
            const records = await consumer.take(2);
            assert.deepEqual(
              records.map((record) => record.headers['hook-name']),
              ['post-create', 'post-finish'],
              codec,
            );
            for (const record of records) {
              assert.equal(record.key, uploadId, codec);
              const payload = JSON.parse(record.value) as { upload: { metadata: Record<string, string> } };
              assert.deepEqual(hookSchemaErrors('default', payload), [], codec);
              assert.equal(payload.upload.metadata.filename, `${codec}.bin`, codec);
            }
          } finally {
            await wharf.stop();
          }
        } finally {
          await consumer.close();
        }
      }),
    );
  });

  test('an extra option the client cannot honour is refused at start, naming it; a known one starts', async () => {
    await assert.rejects(
      startWharf({
        args: [
          ...topicArgs('unused'),
          '--hooks-kafka-extra-options',
          'linger.ms=5;socket.nagle.disable=true',
        ],
      }),
      /--hooks-kafka-extra-options: Kafka extra option "socket\.nagle\.disable" has no equivalent/,
    );
    const wharf = await startWharf({
      args: [...topicArgs(`wharf-test-${tag()}`), '--hooks-kafka-extra-options', 'linger.ms=5'],
    });
    await wharf.stop();
  });
});
