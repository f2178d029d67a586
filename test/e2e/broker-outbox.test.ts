import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type ChannelModel, connect } from 'amqplib';
import { kafkaConsumer, takeDistinctMessages } from '../support/brokers.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { repoRoot, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const run = promisify(execFile);

// Brokers of their own (other ports, other node names): stopping them never disturbs the other test files.
const rabbitEnv = { WHARF_TEST_AMQP_PORT: '5692', WHARF_TEST_RABBITMQ_NODE: 'wharf-outage@localhost' };
const rabbitUrl = 'amqp://guest:guest@127.0.0.1:5692';
const kafkaEnv = { WHARF_TEST_KAFKA_PORT: '9292' };
const kafkaBroker = '127.0.0.1:9292';

async function service(name: 'rabbitmq' | 'kafka', action: 'start' | 'stop', env: Record<string, string>) {
  await run('bash', [path.join(repoRoot, `scripts/services/${name}.sh`), action], {
    env: { ...process.env, ...env },
    timeout: 300_000,
  });
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

describe('durable outbox: broker outages and crashes lose no event', () => {
  test('RabbitMQ: down during 20 uploads, then back: every event arrives once per id, in order per upload; kill -9 with events pending, restart: they arrive', async (t) => {
    await service('rabbitmq', 'start', rabbitEnv);
    t.after(() => service('rabbitmq', 'stop', rabbitEnv));
    const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    const tag = randomUUID().slice(0, 8);
    const queue = `outage-${tag}`;
    const args = [
      '--hooks-amqp-url',
      rabbitUrl,
      '--hooks-amqp-exchange',
      `outage-${tag}`,
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
    let wharf = await startWharf({ dataDir, args });
    try {
      // Wharf declares its queue when it connects at startup; wait for it before taking the broker down.
      const probe = await connect(rabbitUrl);
      try {
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
      } finally {
        await probe.close().catch(() => {});
      }

      await service('rabbitmq', 'stop', rabbitEnv);
      const ids = await uploads(wharf.endpoint, 20);
      assert.equal(ids.length, 20);
      await service('rabbitmq', 'start', rabbitEnv);

      const consumer = await connect(rabbitUrl);
      try {
        assertEveryUploadInOrder(await receiveDistinct(consumer, queue, 40), ids);
      } finally {
        await consumer.close();
      }

      // A crash with events still owed: they are in the journal, and the next start sends them.
      await service('rabbitmq', 'stop', rabbitEnv);
      const pendingIds = await uploads(wharf.endpoint, 5);
      for (let attempt = 0; !(await journalMentions(dataDir, pendingIds)); attempt++) {
        assert.ok(attempt < 100, 'events were journaled');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await killHard(wharf);
      await service('rabbitmq', 'start', rabbitEnv);
      wharf = await startWharf({ dataDir, args });
      const afterCrash = await connect(rabbitUrl);
      try {
        assertEveryUploadInOrder(await receiveDistinct(afterCrash, queue, 10), pendingIds);
      } finally {
        await afterCrash.close();
      }
    } finally {
      await wharf.stop();
    }
  });

  test('Kafka: down during 20 uploads, then back: every event arrives; kill -9 with events pending, restart: they arrive', async (t) => {
    await service('kafka', 'start', kafkaEnv);
    t.after(() => service('kafka', 'stop', kafkaEnv));
    const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-outbox-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    const topic = `outage-${randomUUID().slice(0, 8)}`;
    const brokers = [kafkaBroker];
    // The topic exists before the outage (Wharf's producer creates missing topics, but not while Kafka is down).
    const setup = await kafkaConsumer([topic], brokers);
    await setup.close();
    const args = [
      '--hooks-kafka-urls',
      kafkaBroker,
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
    let wharf = await startWharf({ dataDir, args });
    try {
      await service('kafka', 'stop', kafkaEnv);
      const ids = await uploads(wharf.endpoint, 20);
      await service('kafka', 'start', kafkaEnv);

      const consumer = await kafkaConsumer([topic], brokers);
      try {
        const records = await consumer.takeDistinct(40, (record) => record.headers['event-id'] ?? '');
        const received = records.map((record) => ({
          id: record.headers['event-id'] ?? '',
          hook: record.headers['hook-name'] ?? '',
          uploadId: record.key,
        }));
        assertEveryUploadInOrder(received, ids);
      } finally {
        await consumer.close();
      }

      await service('kafka', 'stop', kafkaEnv);
      const pendingIds = await uploads(wharf.endpoint, 5);
      for (let attempt = 0; !(await journalMentions(dataDir, pendingIds)); attempt++) {
        assert.ok(attempt < 100, 'events were journaled');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await killHard(wharf);
      await service('kafka', 'start', kafkaEnv);
      wharf = await startWharf({ dataDir, args });
      const afterCrash = await kafkaConsumer([topic], brokers);
      try {
        const records = await afterCrash.takeDistinct(50, (record) => record.headers['event-id'] ?? '');
        const received = records
          .map((record) => ({
            id: record.headers['event-id'] ?? '',
            hook: record.headers['hook-name'] ?? '',
            uploadId: record.key,
          }))
          .filter((event) => pendingIds.includes(event.uploadId));
        assertEveryUploadInOrder(received, pendingIds);
      } finally {
        await afterCrash.close();
      }
    } finally {
      await wharf.stop();
    }
  });
});
