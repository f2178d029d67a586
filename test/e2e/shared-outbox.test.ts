import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, type TestContext, test } from 'node:test';
import { type ChannelModel, connect } from 'amqplib';
import { Redis } from 'ioredis';
import pg from 'pg';
import { takeDistinctMessages } from '../support/brokers.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { type PrivateService, privateRabbitmq } from '../support/private-services.ts';
import { postgresUrl, redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

// A RabbitMQ node of its own (free ports, its own name and data folder), started once for the file: stopping it
// never disturbs the other test files, nor another run of this file.
let rabbit: PrivateService;
let rabbitUrl: string;

/**
 * A step that runs once every test taking part has reached it (each waits for it there): the tests share one
 * outage of RabbitMQ instead of stopping and starting it each in turn. A test that ends without reaching it
 * leaves, so the others do not wait for it.
 */
interface Rendezvous {
  arrive(): Promise<void>;
  leave(): void;
}

function rendezvous(count: number, step: () => Promise<void>): Rendezvous {
  let missing = count;
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const done = opened.then(step);
  done.catch(() => {});
  const countOne = (): void => {
    missing -= 1;
    if (missing === 0) open();
  };
  return {
    arrive: async () => {
      countOne();
      await done;
    },
    leave: countOne,
  };
}

/** RabbitMQ goes down once both tests are ready for it, and comes back once both did what they do meanwhile. */
const participants = 2;
const brokerDown = rendezvous(participants, () => rabbit.stop());
const brokerBack = rendezvous(participants, () => rabbit.start());

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
  // Keys of its own (a prefix no other test or run uses): no other outbox entries to take over, none of ours left
  // behind. Database 11 as before, but never flushed: another run of this file may be using it at the same time.
  const url = new URL(redisUrl);
  url.pathname = '/11';
  const prefix = `wharf-takeover-${randomBytes(4).toString('hex')}:`;
  const client = new Redis(url.toString());
  return {
    args: [
      '--info-storage',
      'redis-info-storage',
      '--info-db-dsn',
      url.toString(),
      '--redis-key-prefix',
      prefix,
    ],
    owed: () => client.hlen(`${prefix}outbox:entries`),
    cleanup: async () => {
      const keys = await client.keys(`${prefix}*`);
      if (keys.length > 0) await client.del(...keys);
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

async function takeover(t: TestContext, store: () => Promise<SharedStore>): Promise<void> {
  // Until this test has reached each step, ending (a failure) lets the other test go on without it.
  const pending = new Set([brokerDown, brokerBack]);
  t.after(() => {
    for (const step of pending) step.leave();
  });
  const reach = async (step: Rendezvous): Promise<void> => {
    pending.delete(step);
    await step.arrive();
  };
  const shared = await store();
  t.after(() => shared.cleanup());
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
  const [a, b] = await Promise.all([startWharf({ args }), startWharf({ args })]);
  try {
    await waitForQueue(queue);
    await reach(brokerDown);
    const ids: string[] = [];
    for (let index = 0; index < 8; index++) ids.push(await smallUpload(a.endpoint));
    for (let attempt = 0; (await shared.owed()) < ids.length * 2; attempt++) {
      assert.ok(attempt < 100, 'the events are in the shared outbox');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Instance A dies with every event undelivered; only B is left to send them.
    await killHard(a);
    await reach(brokerBack);
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

// The two tests run side by side and share one outage (see brokerDown, brokerBack).
describe('hooks outbox on the shared info store: events of an instance that dies are delivered by another', {
  concurrency: participants,
}, () => {
  before(async () => {
    rabbit = await privateRabbitmq();
    rabbitUrl = rabbit.url;
    await rabbit.start();
  });
  after(async () => {
    await rabbit?.remove();
  });

  test('Redis: A is killed with its events pending while RabbitMQ is down; B delivers them all', async (t) => {
    await takeover(t, redisStore);
  });

  test('PostgreSQL: A is killed with its events pending while RabbitMQ is down; B delivers them all', async (t) => {
    await takeover(t, postgresStore);
  });
});
