import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type ChannelModel, connect } from 'amqplib';
import { type KafkaRecord, kafkaConsumer, takeDistinctMessages } from '../support/brokers.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { privateKafka, privateRabbitmq } from '../support/private-services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** Waits (polling) until every event of `ids` is in the journal of the Wharf whose data folder is `dataDir`. */
async function waitJournaled(dataDir: string, ids: readonly string[]): Promise<void> {
  for (let attempt = 0; !(await journalMentions(dataDir, ids)); attempt++) {
    assert.ok(attempt < 100, 'events were journaled');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Creates an upload of 4 bytes and sends them: post-create, then post-finish. Returns the upload id. */
async function smallUpload(endpoint: string): Promise<string> {
  const url = await createUpload(endpoint, { 'Upload-Length': 4 });
  const reply = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': 0 },
    body: 'abcd',
  });
  assert.equal(reply.status, 204);
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

async function uploads(endpoint: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let index = 0; index < count; index++) ids.push(await smallUpload(endpoint));
  return ids;
}

interface Received {
  readonly id: string;
  readonly hook: string;
  readonly uploadId: string;
}

/** Reads messages from `queue` until `count` distinct event ids arrived (duplicates are allowed). */
function receiveDistinct(connection: ChannelModel, queue: string, count: number): Promise<Received[]> {
  return takeDistinctMessages(connection, queue, count, 60_000, (message) => {
    const payload = JSON.parse(message.content.toString('utf8')) as { upload: { id: string } };
    const id = String(message.properties.messageId);
    return { id, hook: String(message.properties.type), uploadId: payload.upload.id };
  });
}

/** Each upload got post-create then post-finish, and nothing else arrived. */
function assertEveryUploadInOrder(received: readonly Received[], ids: readonly string[]): void {
  for (const id of ids) {
    const hooks = received.filter((event) => event.uploadId === id).map((event) => event.hook);
    assert.deepEqual(hooks, ['post-create', 'post-finish'], `events of upload ${id}`);
  }
  assert.equal(received.length, ids.length * 2);
}

async function journalMentions(dataDir: string, ids: readonly string[]): Promise<boolean> {
  const text = await readFile(path.join(dataDir, '.wharf-outbox/journal.jsonl'), 'utf8').catch(() => '');
  // Both events of each upload (post-create, post-finish) added: one event's line names its upload more than once.
  const added = text.split('\n').filter((line) => line.startsWith('{"t":"add"'));
  return ids.every((id) => added.filter((line) => line.includes(id)).length >= 2);
}

async function killHard(wharf: WharfProcess): Promise<void> {
  const exited = new Promise((resolve) => wharf.child.once('exit', resolve));
  wharf.child.kill('SIGKILL');
  await exited;
}

// Each test stops and starts a broker of its own (free ports, data in a temporary folder), never a shared one, so
// two runs of this file at once do not disturb each other. One outage serves both cases: instance A stays up
// through it and must deliver what it owes once the broker is back; instance B (a data folder of its own) is
// killed -9 during it with events pending and must deliver them when it starts again.
describe('durable outbox: broker outages and crashes lose no event', () => {
  test('RabbitMQ: down during 20 uploads, then back: every event arrives once per id, in order per upload; kill -9 with events pending, restart: they arrive', async (t) => {
    const rabbit = await privateRabbitmq();
    t.after(() => rabbit.remove());
    await rabbit.start();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    const argsFor = (queue: string) => [
      '--hooks-amqp-url',
      rabbit.url,
      '--hooks-amqp-exchange',
      queue,
      '--hooks-amqp-declare-exchange',
      '--hooks-amqp-declare-queues',
      '--hooks-amqp-durable-exchange',
      '--hooks-amqp-durable-queues',
      '--hooks-amqp-routing-key',
      queue,
      '--hooks',
      'post-create,post-finish',
      '--hooks-amqp-publish-timeout',
      '2',
      '--shutdown-timeout',
      '1',
      '--hooks-outbox-max-backoff',
      '1',
    ];
    const tag = randomUUID().slice(0, 8);
    const [queueA, queueB] = [`outage-${tag}-a`, `outage-${tag}-b`];
    let [a, b] = await Promise.all([
      startWharf({ args: argsFor(queueA) }),
      startWharf({ dataDir, args: argsFor(queueB) }),
    ]);
    try {
      // Wharf declares its queue when it connects at startup; wait for both before taking the broker down.
      const probe = await connect(rabbit.url);
      try {
        for (const queue of [queueA, queueB]) {
          for (let attempt = 0; ; attempt++) {
            const channel = await probe.createChannel();
            channel.on('error', () => {});
            const declared = await channel.checkQueue(queue).then(
              () => true,
              () => false,
            );
            if (declared) break;
            assert.ok(attempt < 100, 'the queue is declared at startup');
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      } finally {
        await probe.close().catch(() => {});
      }

      await rabbit.stop();
      const ids = await uploads(a.endpoint, 20);
      assert.equal(ids.length, 20);
      // A crash with events still owed: they are in the journal, and the next start sends them.
      const pendingIds = await uploads(b.endpoint, 5);
      await waitJournaled(dataDir, pendingIds);
      await killHard(b);
      await rabbit.start();

      const consumer = await connect(rabbit.url);
      try {
        assertEveryUploadInOrder(await receiveDistinct(consumer, queueA, 40), ids);
      } finally {
        await consumer.close();
      }

      b = await startWharf({ dataDir, args: argsFor(queueB) });
      const afterCrash = await connect(rabbit.url);
      try {
        assertEveryUploadInOrder(await receiveDistinct(afterCrash, queueB, 10), pendingIds);
      } finally {
        await afterCrash.close();
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('Kafka: down during 20 uploads, then back: every event arrives; kill -9 with events pending, restart: they arrive', async (t) => {
    const kafka = await privateKafka();
    t.after(() => kafka.remove());
    await kafka.start();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    const tag = randomUUID().slice(0, 8);
    const [topicA, topicB] = [`outage-${tag}-a`, `outage-${tag}-b`];
    const brokers = [kafka.url];
    // The topics exist before the outage (Wharf's producer creates missing topics, but not while Kafka is down).
    const setup = await kafkaConsumer([topicA, topicB], brokers);
    await setup.close();
    const argsFor = (topic: string) => [
      '--hooks-kafka-urls',
      kafka.url,
      '--hooks-kafka-topic',
      topic,
      '--hooks',
      'post-create,post-finish',
      '--hooks-kafka-send-timeout',
      '3',
      '--shutdown-timeout',
      '1',
      '--hooks-outbox-max-backoff',
      '1',
    ];
    const received = (records: readonly KafkaRecord[]) =>
      records.map((record) => ({
        id: record.headers['event-id'] ?? '',
        hook: record.headers['hook-name'] ?? '',
        uploadId: record.key,
      }));
    let [a, b] = await Promise.all([
      startWharf({ args: argsFor(topicA) }),
      startWharf({ dataDir, args: argsFor(topicB) }),
    ]);
    try {
      await kafka.stop();
      const ids = await uploads(a.endpoint, 20);
      const pendingIds = await uploads(b.endpoint, 5);
      await waitJournaled(dataDir, pendingIds);
      await killHard(b);
      await kafka.start();

      const consumer = await kafkaConsumer([topicA], brokers);
      try {
        const records = await consumer.takeDistinct(40, (record) => record.headers['event-id'] ?? '');
        assertEveryUploadInOrder(received(records), ids);
      } finally {
        await consumer.close();
      }

      b = await startWharf({ dataDir, args: argsFor(topicB) });
      const afterCrash = await kafkaConsumer([topicB], brokers);
      try {
        const records = await afterCrash.takeDistinct(10, (record) => record.headers['event-id'] ?? '');
        assertEveryUploadInOrder(received(records), pendingIds);
      } finally {
        await afterCrash.close();
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
