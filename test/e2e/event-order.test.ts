import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type ChannelModel, connect } from 'amqplib';
import pg from 'pg';
import {
  amqpUrl,
  type KafkaRecord,
  kafkaBrokers,
  kafkaConsumer,
  takeDistinctMessages,
} from '../support/brokers.ts';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { type RoundRobinProxy, startRoundRobinProxy } from '../support/round-robin-proxy.ts';
import { postgresUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/*
 * Each upload's events reach RabbitMQ and Kafka in the order they happened, numbered 1, 2, 3..., although
 * two instances behind a round-robin balancer each recorded some of them in the shared outbox: the brokers
 * are unreachable while the uploads run (a port nobody listens on yet), so both instances hold events of the
 * same uploads when the brokers come back, and both start sending at once.
 */

const lifecycle = ['post-create', 'post-receive', 'post-receive', 'post-finish'];
const uploads = 8;

/** A free loopback port, nothing listening on it. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts forwarding `port` to `target` (a broker that was "down" until now: its port refused connections). */
async function forward(port: number, target: { host: string; port: number }): Promise<() => Promise<void>> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

interface SharedState {
  readonly args: readonly string[];
  close(): Promise<void>;
}

/** A Redis server of this test's own (never the shared one: the outbox keys have no per-test prefix). */
async function privateRedis(): Promise<SharedState> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'wharf-order-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}/0`;
  for (let attempt = 0; ; attempt++) {
    const ready = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ready) break;
    assert.ok(attempt < 100, 'the private redis-server listens');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    args: ['--info-storage', 'redis-info-storage', '--info-db-dsn', url],
    close: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A PostgreSQL schema of this test's own on the shared server. */
async function privateSchema(): Promise<SharedState> {
  const schema = `wharf_order_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const dsn = `${postgresUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    args: ['--info-storage', 'db-info-storage', '--info-db-dsn', dsn],
    close: async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}

/** One upload of three chunks through the balancer: POST, then three PATCHes, each to the next instance. */
async function chunkedUpload(endpoint: string): Promise<string> {
  const chunks = ['abcd', 'efgh', 'ijkl'];
  const url = await createUpload(endpoint, { 'Upload-Length': chunks.join('').length });
  let offset = 0;
  for (const chunk of chunks) {
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': offset },
      body: chunk,
    });
    assert.equal(reply.status, 204, reply.text);
    offset += chunk.length;
  }
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

interface Received {
  readonly eventId: string;
  readonly hook: string;
  readonly uploadId: string;
  /** The `upload-sequence` header. */
  readonly header: string | undefined;
  /** The payload's `sequence` field. */
  readonly sequence: unknown;
}

/** Reads `queue` until `count` distinct events arrived; the first copy of each, in arrival order. */
async function takeAmqp(connection: ChannelModel, queue: string, count: number): Promise<Received[]> {
  // Wharf declares the queue when it reaches RabbitMQ, before it publishes.
  for (let attempt = 0; ; attempt++) {
    const probe = await connection.createChannel();
    probe.on('error', () => {});
    const declared = await probe.checkQueue(queue).then(
      () => true,
      () => false,
    );
    await probe.close().catch(() => {});
    if (declared) break;
    assert.ok(attempt < 600, `queue ${queue} is declared`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return takeDistinctMessages(connection, queue, count, 90_000, (message) => {
    const payload = JSON.parse(message.content.toString('utf8')) as {
      upload: { id: string };
      sequence?: unknown;
    };
    const header = (message.properties.headers as Record<string, unknown> | undefined)?.['upload-sequence'];
    return {
      eventId: String(message.properties.messageId),
      hook: String(message.properties.type),
      uploadId: payload.upload.id,
      header: header === undefined ? undefined : String(header),
      sequence: payload.sequence,
    };
  });
}

function fromKafka(record: KafkaRecord): Received {
  const payload = JSON.parse(record.value) as { sequence?: unknown };
  return {
    eventId: record.headers['event-id'] ?? '',
    hook: record.headers['hook-name'] ?? '',
    uploadId: record.key,
    header: record.headers['upload-sequence'],
    sequence: payload.sequence,
  };
}

/** Every upload's events arrived in lifecycle order. */
function assertInOrder(broker: string, received: readonly Received[], ids: readonly string[]): void {
  for (const id of ids) {
    assert.deepEqual(
      received.filter((event) => event.uploadId === id).map((event) => event.hook),
      lifecycle,
      `${broker}: the events of upload ${id} arrived in the order they happened`,
    );
  }
  assert.equal(received.length, ids.length * lifecycle.length);
}

/** Every upload's events are numbered 1, 2, 3, 4 in the payload and the `upload-sequence` header. */
function assertNumbered(broker: string, received: readonly Received[], ids: readonly string[]): void {
  for (const id of ids) {
    const events = received.filter((event) => event.uploadId === id);
    assert.deepEqual(
      events.map((event) => event.sequence),
      [1, 2, 3, 4],
      `${broker}: upload ${id}'s payloads are numbered 1, 2, 3, 4`,
    );
    assert.deepEqual(
      events.map((event) => event.header),
      ['1', '2', '3', '4'],
      `${broker}: upload ${id}'s upload-sequence headers`,
    );
  }
}

async function twoInstancesInOrder(state: SharedState): Promise<void> {
  const tag = randomBytes(4).toString('hex');
  const queue = `order-${tag}`;
  const topic = `order-${tag}`;
  const amqp = new URL(amqpUrl);
  const kafka = kafkaBrokers[0]?.split(':') ?? [];
  const amqpPort = await freePort();
  const kafkaPort = await freePort();
  const brokerUrl = new URL(amqpUrl);
  brokerUrl.port = String(amqpPort);
  // The topic exists before Wharf sends (its producer cannot create it through the bootstrap port alone).
  const consumer = await kafkaConsumer([topic]);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'wharf-order-'));
  const args = [
    ...state.args,
    '--no-access',
    '--hooks',
    'post-create,post-receive,post-finish',
    '--hooks-amqp-url',
    brokerUrl.toString(),
    '--hooks-amqp-exchange',
    `order-${tag}`,
    '--hooks-amqp-declare-exchange',
    '--hooks-amqp-declare-queues',
    '--hooks-amqp-routing-key',
    queue,
    '--hooks-amqp-publish-timeout',
    '2',
    '--hooks-kafka-urls',
    `127.0.0.1:${kafkaPort}`,
    '--hooks-kafka-topic',
    topic,
    '--hooks-kafka-send-timeout',
    '2',
    '--hooks-outbox-max-backoff',
    '1',
    '--shutdown-timeout',
    '1',
  ];
  const instances: WharfProcess[] = [];
  let proxy: RoundRobinProxy | undefined;
  const stops: (() => Promise<void>)[] = [];
  const rabbit = await connect(amqpUrl);
  try {
    instances.push(await startWharf({ dataDir, args }), await startWharf({ dataDir, args }));
    proxy = await startRoundRobinProxy(instances.map((instance) => instance.origin));
    const endpoint = `${proxy.origin}/files/`;
    const ids: string[] = [];
    for (let index = 0; index < uploads; index++) ids.push(await chunkedUpload(endpoint));
    // Both instances served every upload (POST on one, the PATCHes alternating).
    const served = new Set(proxy.served.map((entry) => entry.split(' ')[1]));
    assert.deepEqual([...served].sort(), ['0', '1']);

    // The brokers come back: both instances now send the events they hold, for the same uploads.
    stops.push(await forward(amqpPort, { host: amqp.hostname, port: Number(amqp.port || 5672) }));
    stops.push(await forward(kafkaPort, { host: kafka[0] ?? '127.0.0.1', port: Number(kafka[1] ?? 9092) }));
    const count = ids.length * lifecycle.length;
    const [fromRabbit, records] = await Promise.all([
      takeAmqp(rabbit, queue, count),
      consumer.takeDistinct(count, (record) => record.headers['event-id'] ?? '', 90_000),
    ]);
    const fromKafkaTopic = records.map(fromKafka);
    assertInOrder('RabbitMQ', fromRabbit, ids);
    assertInOrder('Kafka', fromKafkaTopic, ids);
    assertNumbered('RabbitMQ', fromRabbit, ids);
    assertNumbered('Kafka', fromKafkaTopic, ids);
  } finally {
    await proxy?.close();
    await Promise.all(instances.map((instance) => instance.stop('SIGKILL')));
    for (const stop of stops) await stop();
    await consumer.close();
    const channel = await rabbit.createChannel().catch(() => undefined);
    await channel?.deleteQueue(queue).catch(() => {});
    await channel?.deleteExchange(`order-${tag}`).catch(() => {});
    await rabbit.close().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    await state.close();
  }
}

// Both at once: each has its own record store, brokers' ports, queue, topic and instances.
describe('events of one upload in order across two instances (shared outbox, brokers down, then back)', {
  concurrency: true,
}, () => {
  test('Redis outbox: RabbitMQ and Kafka receive each upload`s events in order, numbered 1, 2, 3, 4', async () => {
    await twoInstancesInOrder(await privateRedis());
  });

  test('PostgreSQL outbox: RabbitMQ and Kafka receive each upload`s events in order, numbered 1, 2, 3, 4', async () => {
    await twoInstancesInOrder(await privateSchema());
  });
});
