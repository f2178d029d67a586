import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type ChannelModel, connect } from 'amqplib';
import { Redis } from 'ioredis';
import pg from 'pg';
import { takeDistinctMessages } from '../support/brokers.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { postgresUrl, redisUrl } from '../support/services.ts';
import { repoRoot, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const run = promisify(execFile);

// A RabbitMQ node of its own (port, node name): stopping it never disturbs the other test files.
const rabbitEnv = { WHARF_TEST_AMQP_PORT: '5693', WHARF_TEST_RABBITMQ_NODE: 'wharf-takeover@localhost' };
const rabbitUrl = 'amqp://guest:guest@127.0.0.1:5693';

async function rabbit(action: 'start' | 'stop'): Promise<void> {
  await run('bash', [path.join(repoRoot, 'scripts/services/rabbitmq.sh'), action], {
    env: { ...process.env, ...rabbitEnv },
    timeout: 300_000,
  });
}

async function smallUpload(endpoint: string): Promise<string> {
  const url = await createUpload(endpoint, { 'Upload-Length': 4 });
  const reply = await send('PATCH', url, {
    headers: { ...tus, ...octets, 'Upload-Offset': 0 },
    body: 'abcd',
  });
  assert.equal(reply.status, 204);
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

interface Received {
  readonly id: string;
  readonly hook: string;
  readonly uploadId: string;
}

/** Reads messages from `queue` until `count` distinct event ids arrived (duplicates are allowed). */
function receiveDistinct(connection: ChannelModel, queue: string, count: number): Promise<Received[]> {
  return takeDistinctMessages(connection, queue, count, 90_000, (message) => {
    const payload = JSON.parse(message.content.toString('utf8')) as { upload: { id: string } };
    const id = String(message.properties.messageId);
    return { id, hook: String(message.properties.type), uploadId: payload.upload.id };
  });
}

async function waitForQueue(queue: string): Promise<void> {
  const probe = await connect(rabbitUrl);
  try {
    for (let attempt = 0; ; attempt++) {
      const channel = await probe.createChannel();
      channel.on('error', () => {});
      if (
        await channel.checkQueue(queue).then(
          () => true,
          () => false,
        )
      )
        return;
      assert.ok(attempt < 100, 'the queue is declared at startup');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await probe.close().catch(() => {});
  }
}

/** A shared info store the two instances use, and a way to count the outbox entries it holds. */
interface SharedStore {
  readonly args: readonly string[];
  owed(): Promise<number>;
  cleanup(): Promise<void>;
}

async function redisStore(): Promise<SharedStore> {
  // A database of its own: no other test's outbox entries to take over, none of ours left behind.
  const url = new URL(redisUrl);
  url.pathname = '/11';
  const client = new Redis(url.toString());
  await client.flushdb();
  return {
    args: ['--info-storage', 'redis-info-storage', '--info-db-dsn', url.toString()],
    owed: () => client.hlen('wharf:outbox:entries'),
    cleanup: async () => {
      await client.flushdb();
      client.disconnect();
    },
  };
}

async function postgresStore(): Promise<SharedStore> {
  const schema = `wharf_takeover_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const dsn = `${postgresUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    args: ['--info-storage', 'db-info-storage', '--info-db-dsn', dsn],
    owed: async () => {
      const { rows } = await admin.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${schema}.wharf_hook_outbox`,
      );
      return Number(rows[0]?.n ?? 0);
    },
    cleanup: async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}

async function killHard(wharf: WharfProcess): Promise<void> {
  const exited = new Promise((resolve) => wharf.child.once('exit', resolve));
  wharf.child.kill('SIGKILL');
  await exited;
}

async function takeover(shared: SharedStore): Promise<void> {
  const tag = randomBytes(4).toString('hex');
  const queue = `takeover-${tag}`;
  const args = [
    ...shared.args,
    '--hooks-amqp-url',
    rabbitUrl,
    '--hooks-amqp-exchange',
    `takeover-${tag}`,
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
  const a = await startWharf({ args });
  const b = await startWharf({ args });
  try {
    await waitForQueue(queue);
    await rabbit('stop');
    const ids: string[] = [];
    for (let index = 0; index < 8; index++) ids.push(await smallUpload(a.endpoint));
    for (let attempt = 0; (await shared.owed()) < ids.length * 2; attempt++) {
      assert.ok(attempt < 100, 'the events are in the shared outbox');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Instance A dies with every event undelivered; only B is left to send them.
    await killHard(a);
    await rabbit('start');
    const consumer = await connect(rabbitUrl);
    let received: Received[];
    try {
      received = await receiveDistinct(consumer, queue, ids.length * 2);
    } finally {
      await consumer.close();
    }
    for (const id of ids) {
      const hooks = received.filter((event) => event.uploadId === id).map((event) => event.hook);
      assert.deepEqual(hooks, ['post-create', 'post-finish'], `events of upload ${id}`);
    }
    assert.equal(received.length, ids.length * 2);
    for (let attempt = 0; (await shared.owed()) > 0; attempt++) {
      assert.ok(attempt < 100, 'B forgets what it delivered');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await a.stop().catch(() => {});
    await b.stop();
  }
}

describe('hooks outbox on the shared info store: events of an instance that dies are delivered by another', () => {
  test('Redis: A is killed with its events pending while RabbitMQ is down; B delivers them all', async (t) => {
    await rabbit('start');
    t.after(() => rabbit('stop'));
    const shared = await redisStore();
    t.after(() => shared.cleanup());
    await takeover(shared);
  });

  test('PostgreSQL: A is killed with its events pending while RabbitMQ is down; B delivers them all', async (t) => {
    await rabbit('start');
    t.after(() => rabbit('stop'));
    const shared = await postgresStore();
    t.after(() => shared.cleanup());
    await takeover(shared);
  });
});
