import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { type Channel, type ChannelModel, type ConsumeMessage, connect } from 'amqplib';
import { createUpload, octets, send, tus } from './http.ts';

/**
 * The Kafka client, loaded by the first Kafka helper called: it takes most of this module's load time, which the
 * files that use only RabbitMQ would pay for nothing.
 */
const kafkaClient = () => import('@platformatic/kafka');

/** RabbitMQ started by scripts/services/rabbitmq.sh (or given by the environment). */
export const amqpUrl = process.env.WHARF_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5682';
export const rabbitmqNode = process.env.WHARF_TEST_RABBITMQ_NODE ?? 'wharf@localhost';
/** Kafka started by scripts/services/kafka.sh (or given by the environment). */
export const kafkaBrokers = (process.env.WHARF_TEST_KAFKA_BROKERS ?? '127.0.0.1:9192').split(',');

/** Declares `queue` on a channel of its own: undefined when RabbitMQ accepts it, else the error it closed with. */
async function declareOutcome(
  connection: ChannelModel,
  queue: string,
  options: { durable: boolean; autoDelete: boolean },
): Promise<Error | undefined> {
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    await channel.assertQueue(queue, options);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * Whether RabbitMQ holds the existing `queue` as durable, asked over AMQP (as `rabbitmqctl list_queues name
 * durable` would answer, without the Erlang VM each rabbitmqctl run boots). RabbitMQ accepts a redeclaration
 * whose properties equal the queue's (it then changes nothing) and refuses one whose `durable` differs with
 * 406 PRECONDITION_FAILED "inequivalent arg 'durable'". Both declarations are made, so each answer has its control:
 * exactly one is accepted, and the other is refused for `durable`; anything else throws. `autoDelete` must be the
 * queue's own (it is compared too).
 */
export async function queueDurable(
  connection: ChannelModel,
  queue: string,
  autoDelete = false,
): Promise<boolean> {
  const probe = await connection.createChannel();
  probe.on('error', () => {});
  // A passive check first: a declaration of a queue that does not exist would create it.
  try {
    await probe.checkQueue(queue);
  } finally {
    await probe.close().catch(() => {});
  }
  const asDurable = await declareOutcome(connection, queue, { durable: true, autoDelete });
  const asTransient = await declareOutcome(connection, queue, { durable: false, autoDelete });
  const refusedForDurability = (error: Error | undefined): boolean =>
    error !== undefined &&
    Reflect.get(error, 'code') === 406 &&
    /inequivalent arg 'durable'/.test(error.message);
  if (asDurable === undefined && refusedForDurability(asTransient)) return true;
  if (asTransient === undefined && refusedForDurability(asDurable)) return false;
  throw new Error(
    `queue ${queue}: declared durable: ${asDurable?.message ?? 'accepted'}; declared transient: ${asTransient?.message ?? 'accepted'}`,
  );
}

export interface AmqpPeer {
  readonly connection: ChannelModel;
  readonly channel: Channel;
  close(): Promise<void>;
}

export async function amqpPeer(): Promise<AmqpPeer> {
  const connection = await connect(amqpUrl);
  const channel = await connection.createChannel();
  return {
    connection,
    channel,
    close: async () => {
      await connection.close().catch(() => {});
    },
  };
}

/**
 * Consumes `count` messages from `queue` (acking them), failing after `timeoutMs`. Wharf declares its queues
 * when it first connects, so a queue that does not exist yet is waited for. Uses its own channel: a failed
 * consume closes the channel it ran on.
 */
export async function takeMessages(
  connection: ChannelModel,
  queue: string,
  count: number,
  timeoutMs = 15_000,
): Promise<ConsumeMessage[]> {
  const deadline = Date.now() + timeoutMs;
  const messages: ConsumeMessage[] = [];
  for (;;) {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    try {
      await channel.checkQueue(queue);
    } catch {
      if (Date.now() > deadline) throw new Error(`queue ${queue} was never declared`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    try {
      return await new Promise<ConsumeMessage[]>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(`only ${messages.length} of ${count} messages on ${queue} within ${timeoutMs} ms`),
            ),
          Math.max(0, deadline - Date.now()),
        );
        channel
          .consume(queue, (message) => {
            if (message === null || messages.length >= count) return;
            channel.ack(message);
            messages.push(message);
            if (messages.length === count) {
              clearTimeout(timer);
              resolve(messages);
            }
          })
          .catch((error: unknown) => {
            clearTimeout(timer);
            reject(error);
          });
      });
    } finally {
      await channel.close().catch(() => {});
    }
  }
}

/**
 * Consumes `queue` (acking every message) until `count` distinct event ids (the messages' `messageId`) arrived,
 * failing after `timeoutMs`; redeliveries are allowed. Returns the first copy of each, in arrival order, as
 * `read` makes it of the message.
 */
export async function takeDistinctMessages<T>(
  connection: ChannelModel,
  queue: string,
  count: number,
  timeoutMs: number,
  read: (message: ConsumeMessage) => T,
): Promise<T[]> {
  const channel = await connection.createChannel();
  const distinct = new Map<string, T>();
  try {
    return await new Promise<T[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${distinct.size} of ${count} events arrived on ${queue}`)),
        timeoutMs,
      );
      void channel.consume(queue, (message) => {
        if (message === null) return;
        channel.ack(message);
        const event = read(message);
        const id = String(message.properties.messageId);
        if (!distinct.has(id)) distinct.set(id, event);
        if (distinct.size === count) {
          clearTimeout(timer);
          resolve([...distinct.values()]);
        }
      });
    });
  } finally {
    await channel.close().catch(() => {});
  }
}

/**
 * One upload through its whole life: create (pre-create, post-create), a first chunk (post-receive), the last
 * chunk (post-finish), delete (pre-terminate, post-terminate). Returns the upload's id.
 */
export async function uploadLifecycle(endpoint: string, name = 'report.pdf'): Promise<string> {
  const body = Buffer.from('0123456789');
  const url = await createUpload(endpoint, {
    'Upload-Length': body.length,
    'Upload-Metadata': `filename ${Buffer.from(name).toString('base64')}`,
  });
  for (const [offset, chunk] of [
    [0, body.subarray(0, 4)],
    [4, body.subarray(4)],
  ] as const) {
    const reply = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': offset },
      body: chunk,
    });
    if (reply.status !== 204) throw new Error(`PATCH failed: ${reply.status} ${reply.text}`);
  }
  const deleted = await send('DELETE', url, { headers: tus });
  if (deleted.status !== 204) throw new Error(`DELETE failed: ${deleted.status} ${deleted.text}`);
  return url.replace(/\/$/, '').split('/').pop() ?? '';
}

/** `rabbitmqctl -n <node> args…` with `input` on its standard input. */
function rabbitmqctl(args: readonly string[], input = ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('rabbitmqctl', ['-q', '-n', rabbitmqNode, ...args], (error, _stdout, stderr) =>
      error ? reject(new Error(`rabbitmqctl ${args[0]}: ${error.message} ${stderr}`)) : resolve(),
    );
    child.stdin?.end(input);
  });
}

/**
 * A RabbitMQ virtual host of its own (so a test can use fixed names like Celery's `celery` queue). Made with its
 * permissions by one `rabbitmqctl import_definitions` (each rabbitmqctl run boots an Erlang VM: about 0.4 CPU-s),
 * removed by `delete_vhost`.
 */
export async function temporaryVhost(): Promise<{ url: string; remove(): Promise<void> }> {
  const name = `wharf-test-${Date.now().toString(36)}-${process.pid}`;
  const user = decodeURIComponent(new URL(amqpUrl).username || 'guest');
  const definitions = {
    vhosts: [{ name }],
    permissions: [{ user, vhost: name, configure: '.*', write: '.*', read: '.*' }],
  };
  await rabbitmqctl(['import_definitions', '--format', 'json'], JSON.stringify(definitions));
  const url = new URL(amqpUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return {
    url: url.toString(),
    remove: async () => {
      await rabbitmqctl(['delete_vhost', name]);
    },
  };
}

export interface KafkaRecord {
  readonly topic: string;
  readonly key: string;
  readonly value: string;
  readonly headers: Record<string, string>;
}

/** A broker that has just started may answer UNKNOWN_TOPIC_OR_PARTITION for a moment: try again. */
async function retrying<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** The broker's error codes (apiId) inside a client error, which nests them in AggregateErrors. */
function errorCodes(error: unknown): string[] {
  if (error instanceof AggregateError) return error.errors.flatMap(errorCodes);
  const code = error instanceof Error ? Reflect.get(error, 'apiId') : undefined;
  return typeof code === 'string' ? [code] : [];
}

/** Creates `topics` (one partition each) with the given topic configs, e.g. `max.message.bytes`. */
export async function createKafkaTopics(
  topics: readonly string[],
  configs: Readonly<Record<string, string>> = {},
  brokers: readonly string[] = kafkaBrokers,
): Promise<void> {
  const { Admin } = await kafkaClient();
  const admin = new Admin({ clientId: 'wharf-test', bootstrapBrokers: [...brokers] });
  try {
    await retrying(() =>
      admin
        .createTopics({
          topics: [...topics],
          partitions: 1,
          replicas: 1,
          configs: Object.entries(configs).map(([name, value]) => ({ name, value })),
        })
        .catch((error: unknown) => {
          // A topic that exists already (an earlier step created it) is what was asked for.
          if (!JSON.stringify(errorCodes(error)).includes('TOPIC_ALREADY_EXISTS')) throw error;
        }),
    );
  } finally {
    await admin.close().catch(() => {});
  }
}

/**
 * Reads `count` records from `topics` (from the beginning) with a real consumer in a group of its own, failing
 * after `timeoutMs`. The topics are created first, so the consumer can subscribe before Wharf sends.
 */
export async function kafkaConsumer(
  topics: readonly string[],
  brokers: readonly string[] = kafkaBrokers,
): Promise<{
  take(count: number, timeoutMs?: number): Promise<KafkaRecord[]>;
  /** Waits until `count` records with distinct ids arrived; returns the first of each id, in arrival order. */
  takeDistinct(
    count: number,
    idOf: (record: KafkaRecord) => string,
    timeoutMs?: number,
  ): Promise<KafkaRecord[]>;
  close(): Promise<void>;
}> {
  await createKafkaTopics(topics, {}, brokers);
  const { Consumer, stringDeserializers } = await kafkaClient();
  const consumer = new Consumer({
    groupId: `wharf-test-${randomUUID()}`,
    clientId: 'wharf-test',
    bootstrapBrokers: [...brokers],
    deserializers: stringDeserializers,
  });
  // A short fetch long-poll: close() waits for the fetch in flight, which otherwise idles on an empty topic.
  const stream = await retrying(() =>
    consumer.consume({ topics: [...topics], mode: 'earliest', maxWaitTime: 200 }),
  );
  const records: KafkaRecord[] = [];
  const listeners = new Set<() => void>();
  stream.on('data', (message) => {
    records.push({
      topic: message.topic,
      key: message.key ?? '',
      value: message.value ?? '',
      headers: Object.fromEntries(message.headers),
    });
    for (const listener of listeners) listener();
  });
  const distinct = (idOf: (record: KafkaRecord) => string): KafkaRecord[] => {
    const seen = new Map<string, KafkaRecord>();
    for (const record of records) if (!seen.has(idOf(record))) seen.set(idOf(record), record);
    return [...seen.values()];
  };
  const waitFor = (ready: () => KafkaRecord[] | undefined, timeoutMs: number, what: string) =>
    new Promise<KafkaRecord[]>((resolve, reject) => {
      const check = (): void => {
        const result = ready();
        if (result === undefined) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve(result);
      };
      const timer = setTimeout(() => {
        listeners.delete(check);
        reject(new Error(`${what} within ${timeoutMs} ms (${records.length} records arrived)`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  return {
    takeDistinct: (count, idOf, timeoutMs = 60_000) =>
      waitFor(
        () => {
          const found = distinct(idOf);
          return found.length >= count ? found : undefined;
        },
        timeoutMs,
        `not ${count} distinct Kafka records`,
      ),
    take: (count, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (records.length < count) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(records.slice(0, count));
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`only ${records.length} of ${count} Kafka records within ${timeoutMs} ms`));
        }, timeoutMs);
        listeners.add(check);
        check();
      }),
    close: async () => {
      await stream.close().catch(() => {});
      await consumer.close().catch(() => {});
    },
  };
}
