import type { Kafka, KafkaConfig, Message, Producer, ProducerConfig } from 'kafkajs';
import { withTimeout } from '../../backends/backend.ts';
import { HookConfigError } from '../errors.ts';
import { AbortWatch } from './abort-watch.ts';
import { BatchSender } from './batch-sender.ts';
import { kafkaCloudEventHeaders } from './cloudevents-bindings.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './types.ts';

/** kafkajs's CompressionTypes values, spelled out so that this module does not load kafkajs before it is used. */
const compressionTypes = { none: 0, gzip: 1 } as const;

/** Compression codecs kafkajs can produce without extra codec packages. */
export const supportedKafkaCompressions = ['none', 'gzip'] as const;
export type KafkaCompression = (typeof supportedKafkaCompressions)[number];
/** Codecs rustus (librdkafka) knows; asking for one kafkajs lacks is a startup error, never a silent downgrade. */
export const knownKafkaCompressions = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;

/** `--hooks-kafka-*`, resolved. Names follow rustus. */
export interface KafkaHooksConfig {
  /** `host:port` of the bootstrap brokers. */
  readonly brokers: readonly string[];
  readonly clientId: string | undefined;
  /** One topic for every event. */
  readonly topic: string | undefined;
  /** Topic `{prefix}-{event}` (or `{prefix}-{topic}` when a topic is set too). */
  readonly prefix: string | undefined;
  /** -1 (all in-sync replicas), 0 (none: no delivery guarantee) or 1 (the leader). */
  readonly requiredAcks: -1 | 0 | 1;
  readonly compression: KafkaCompression;
  /** Disconnect after this long without a send; undefined keeps the connection. */
  readonly idleTimeoutMs: number | undefined;
  /** A send that is not acknowledged within this time counts as failed. */
  readonly sendTimeoutMs: number;
  /** `--hooks-kafka-extra-options`, already parsed (librdkafka key names). */
  readonly extraOptions: Readonly<Record<string, string>>;
}

/** The topic an event goes to, as rustus chooses it. */
export function kafkaTopic(config: Pick<KafkaHooksConfig, 'topic' | 'prefix'>, hook: string): string {
  if (config.prefix !== undefined) return `${config.prefix}-${config.topic ?? hook}`;
  return config.topic ?? hook;
}

/**
 * Parses `key=value;key=value`. Unlike rustus, a value may contain `=` (split at the first one) and empty
 * segments (a trailing `;`) are ignored.
 */
export function parseKafkaExtraOptions(text: string): Record<string, string> {
  const options: Record<string, string> = {};
  for (const segment of text.split(';')) {
    if (segment.trim() === '') continue;
    const equals = segment.indexOf('=');
    if (equals <= 0) throw new HookConfigError(`Kafka extra option "${segment}" is not key=value`);
    options[segment.slice(0, equals).trim()] = segment.slice(equals + 1).trim();
  }
  return options;
}

export function parseRequiredAcks(text: string): -1 | 0 | 1 {
  const value = text.trim().toLowerCase();
  if (value === 'all' || value === '-1') return -1;
  if (value === '0') return 0;
  if (value === '1') return 1;
  throw new HookConfigError(`Kafka required acks must be all, -1, 0 or 1 (kafkajs), got "${text}"`);
}

function integerOption(key: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new HookConfigError(`Kafka extra option ${key} must be an integer`);
  return Number(value);
}

function booleanOption(key: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new HookConfigError(`Kafka extra option ${key} must be true or false`);
}

/** How events are gathered into produce requests (see batch-sender.ts), with librdkafka's names and defaults. */
export interface KafkaBatching {
  /** `linger.ms`: how long a batch waits for more events; 0 sends as soon as no request is on its way. */
  readonly lingerMs: number;
  /** `batch.num.messages`. */
  readonly maxMessages: number;
  /** `batch.size`: below the broker's message.max.bytes (1 MiB by default), which bounds a record batch. */
  readonly maxBytes: number;
}

const defaultBatching: KafkaBatching = { lingerMs: 0, maxMessages: 10_000, maxBytes: 1_000_000 };

interface ClientSettings {
  readonly client: KafkaConfig;
  readonly producer: ProducerConfig;
  readonly sendTimeoutMs: number;
  readonly requiredAcks: -1 | 0 | 1;
  readonly compression: KafkaCompression;
  readonly batching: KafkaBatching;
}

/**
 * Maps the configuration (and the librdkafka-named extra options that have a kafkajs equivalent) onto kafkajs
 * settings. An extra option with no equivalent is a startup error rather than silently ignored.
 */
export function kafkaClientSettings(config: KafkaHooksConfig): ClientSettings {
  const client: KafkaConfig = {
    brokers: [...config.brokers],
    clientId: config.clientId ?? 'wharf',
    // kafkajs's logLevel.NOTHING, spelled out so that reading the configuration does not load kafkajs.
    logLevel: 0,
    connectionTimeout: Math.min(config.sendTimeoutMs, 3000),
    requestTimeout: config.sendTimeoutMs,
    // The outbox retries with its own backoff; kafkajs should fail fast instead of holding a delivery.
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  };
  const producer: ProducerConfig = { allowAutoTopicCreation: true };
  let sendTimeoutMs = config.sendTimeoutMs;
  let requiredAcks = config.requiredAcks;
  let compression = config.compression;
  let username: string | undefined;
  let password: string | undefined;
  let mechanism = 'plain';
  let batching = defaultBatching;
  for (const [key, value] of Object.entries(config.extraOptions)) {
    switch (key) {
      case 'bootstrap.servers':
      case 'metadata.broker.list':
        client.brokers = value.split(',').map((item) => item.trim());
        break;
      case 'client.id':
        client.clientId = value;
        break;
      case 'allow.auto.create.topics':
        producer.allowAutoTopicCreation = booleanOption(key, value);
        break;
      case 'security.protocol': {
        const protocol = value.toLowerCase();
        if (!['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'].includes(protocol)) {
          throw new HookConfigError(`Kafka security.protocol "${value}" is not supported`);
        }
        client.ssl = protocol.endsWith('ssl');
        break;
      }
      case 'sasl.mechanism':
      case 'sasl.mechanisms':
        mechanism = value.toLowerCase();
        break;
      case 'sasl.username':
        username = value;
        break;
      case 'sasl.password':
        password = value;
        break;
      case 'request.timeout.ms':
        client.requestTimeout = integerOption(key, value);
        break;
      case 'socket.connection.setup.timeout.ms':
        client.connectionTimeout = integerOption(key, value);
        break;
      case 'message.timeout.ms':
      case 'delivery.timeout.ms':
        sendTimeoutMs = integerOption(key, value);
        break;
      case 'enable.idempotence':
        producer.idempotent = booleanOption(key, value);
        break;
      case 'request.required.acks':
      case 'acks':
        requiredAcks = parseRequiredAcks(value);
        break;
      case 'compression.codec':
      case 'compression.type':
        compression = kafkaCompression(value);
        break;
      case 'metadata.max.age.ms':
        producer.metadataMaxAge = integerOption(key, value);
        break;
      case 'linger.ms':
      case 'queue.buffering.max.ms':
        batching = { ...batching, lingerMs: integerOption(key, value) };
        break;
      case 'batch.num.messages':
        batching = { ...batching, maxMessages: Math.max(1, integerOption(key, value)) };
        break;
      case 'batch.size':
        batching = { ...batching, maxBytes: integerOption(key, value) };
        break;
      default:
        throw new HookConfigError(
          `Kafka extra option "${key}" has no equivalent in Wharf's Kafka client (kafkajs); see docs/hooks.md`,
        );
    }
  }
  if (username !== undefined && password !== undefined) {
    if (mechanism !== 'plain' && mechanism !== 'scram-sha-256' && mechanism !== 'scram-sha-512') {
      throw new HookConfigError(`Kafka SASL mechanism "${mechanism}" is not supported`);
    }
    client.sasl = { mechanism, username, password } as NonNullable<KafkaConfig['sasl']>;
  }
  return { client, producer, sendTimeoutMs, requiredAcks, compression, batching };
}

/** Checks a compression name: kafkajs produces none and gzip; snappy, lz4 and zstd are refused at startup. */
export function kafkaCompression(name: string): KafkaCompression {
  const lowered = name.trim().toLowerCase();
  if ((supportedKafkaCompressions as readonly string[]).includes(lowered)) return lowered as KafkaCompression;
  if ((knownKafkaCompressions as readonly string[]).includes(lowered)) {
    throw new HookConfigError(
      `Kafka compression "${lowered}" is not available in Wharf (kafkajs produces ${supportedKafkaCompressions.join(' and ')} only)`,
    );
  }
  throw new HookConfigError(
    `unknown Kafka compression "${name}"; expected one of ${knownKafkaCompressions.join(', ')}`,
  );
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // kafkajs names the broker's error code in `type` (MESSAGE_TOO_LARGE, TOPIC_AUTHORIZATION_FAILED, ...).
  const type = Reflect.get(error, 'type');
  return `${error.name}${typeof type === 'string' ? ` (${type})` : ''}: ${error.message}`;
}

/** One event on its way: its topic and its Kafka record (a kafkajs Message, with text only). */
interface OutgoingRecord {
  readonly topic: string;
  readonly message: {
    readonly key: string;
    readonly value: string;
    readonly headers: Readonly<Record<string, string>>;
  };
}

/** What a record weighs in a batch: its key, value and headers, plus a record's framing. */
function recordSize({ message }: OutgoingRecord): number {
  let bytes = 64 + Buffer.byteLength(message.key) + Buffer.byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers))
    bytes += name.length + Buffer.byteLength(value);
  return bytes;
}

/**
 * The broker answered and refused records (too large, invalid): that may be one record of the batch. A dropped
 * connection or a timeout is everyone's, and sending each record again alone would only multiply the waiting.
 */
function brokerRefusedRecords(error: unknown): boolean {
  return (
    error instanceof Error &&
    error.name === 'KafkaJSProtocolError' &&
    Reflect.get(error, 'retriable') === false
  );
}

/**
 * `--hooks-kafka-urls`: sends every event to Kafka with the upload id as the record key (so one upload's
 * events stay in one partition, in order) and the event id in the `event-id` header. A delivery counts once the
 * required replicas acknowledged it.
 */
export class KafkaHookTransport implements HookTransport {
  readonly config: KafkaHooksConfig;
  readonly #settings: ClientSettings;
  /** What to interrupt when a delivery's signal aborts. */
  readonly #aborts = new AbortWatch();
  /** The payload says all a consumer learns of the request: no request header is read. */
  readonly requestHeaders: readonly string[] = [];
  /** Created with the first producer: kafkajs is loaded only when a Kafka hook is actually used. */
  #kafka: Kafka | undefined;
  #producer: Promise<Producer> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #closed = false;
  readonly #batches: BatchSender<OutgoingRecord>;

  constructor(config: KafkaHooksConfig) {
    this.config = config;
    this.#settings = kafkaClientSettings(config);
    const batching = this.#settings.batching;
    this.#batches = new BatchSender<OutgoingRecord>({
      sendBatch: (records) => this.#sendBatch(records),
      sizeOf: recordSize,
      maxItems: batching.maxMessages,
      maxBytes: batching.maxBytes,
      lingerMs: batching.lingerMs,
      mayBeOneItem: brokerRefusedRecords,
    });
  }

  describe(hook: string): string {
    return `kafka:${this.config.brokers.join(',')}/${kafkaTopic(this.config, hook)}`;
  }

  async open(): Promise<void> {
    await this.#connected();
    this.#armIdleTimer();
  }

  async deliver(delivery: HookDelivery): Promise<DeliveryResult> {
    if (delivery.signal.aborted || this.#closed) return { kind: 'aborted' };
    const timeoutMs = this.#settings.sendTimeoutMs;
    clearTimeout(this.#idleTimer);
    this.#inFlight += 1;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timed_out'>((resolve) => {
      timer = setTimeout(() => resolve('timed_out'), timeoutMs);
    });
    let stopWatching: (() => void) | undefined;
    const aborted = new Promise<'aborted'>((resolve) => {
      stopWatching = this.#aborts.on(delivery.signal, () => resolve('aborted'));
    });
    // Given up on (timed out, or the engine closed): a record still waiting for its batch is then not sent.
    const giveUp = new AbortController();
    const sent = this.#batches.send(this.#record(delivery), giveUp.signal).then(
      () => 'delivered' as const,
      (error: unknown) => error,
    );
    const outcome = await Promise.race([sent, timedOut, aborted]);
    clearTimeout(timer);
    // The signal is the engine's, shared by every delivery: leave no listener behind.
    stopWatching?.();
    this.#inFlight -= 1;
    this.#armIdleTimer();
    if (outcome === 'timed_out' || outcome === 'aborted') giveUp.abort(new Error(`the delivery ${outcome}`));
    if (outcome === 'delivered') return { kind: 'delivered' };
    if (outcome === 'aborted') return { kind: 'aborted' };
    // The producer of a hung or failed send is reset by #sendBatch, once for its batch: every delivery waiting
    // behind a hung batch times out at about the same moment, and each resetting would close the producer
    // that had just replaced it.
    if (outcome === 'timed_out') return { kind: 'timed_out', timeoutMs };
    return { kind: 'unreachable', detail: `Kafka: ${errorText(outcome)}` };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    const producer = this.#producer;
    this.#producer = undefined;
    if (producer !== undefined) await (await producer.catch(() => undefined))?.disconnect().catch(() => {});
  }

  #record(delivery: HookDelivery): OutgoingRecord {
    const headers: Record<string, string> = {
      'event-id': delivery.eventId,
      'hook-name': delivery.hook,
      'content-type': 'application/json',
      // CloudEvents Kafka binding: its `content-type`, and `ce_*` attribute headers in binary mode.
      ...(delivery.cloudEvent !== undefined ? kafkaCloudEventHeaders(delivery.cloudEvent) : {}),
      // The upload's event number (Kafka header values are bytes: its decimal text).
      ...(delivery.sequence !== undefined ? { 'upload-sequence': String(delivery.sequence) } : {}),
    };
    return {
      topic: kafkaTopic(this.config, delivery.hook),
      message: { key: delivery.uploadId, value: delivery.payload, headers },
    };
  }

  /** One produce request for a batch, its records grouped by topic in the order they came. */
  async #sendBatch(records: readonly OutgoingRecord[]): Promise<void> {
    if (this.#closed) throw new Error('the Kafka hook transport is closed');
    const byTopic = new Map<string, Message[]>();
    for (const record of records) {
      const messages = byTopic.get(record.topic);
      if (messages === undefined) byTopic.set(record.topic, [record.message]);
      else messages.push(record.message);
    }
    const timeoutMs = this.#settings.sendTimeoutMs;
    const sending = this.#connected().then((producer) =>
      producer.sendBatch({
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        acks: this.#settings.requiredAcks,
        timeout: timeoutMs,
        compression: this.#settings.compression === 'gzip' ? compressionTypes.gzip : compressionTypes.none,
      }),
    );
    try {
      await withTimeout(sending, timeoutMs, `no acknowledgement within ${timeoutMs} ms`);
    } catch (error) {
      // A failed or hung send may leave the producer in a bad state: start afresh next time.
      this.#reset();
      throw error;
    }
  }

  #connected(): Promise<Producer> {
    if (this.#producer === undefined) {
      const connecting = import('kafkajs').then(async ({ Kafka: KafkaClient }) => {
        this.#kafka ??= new KafkaClient(this.#settings.client);
        const producer = this.#kafka.producer(this.#settings.producer);
        await producer.connect();
        return producer;
      });
      connecting.catch(() => {
        if (this.#producer === connecting) this.#producer = undefined;
      });
      this.#producer = connecting;
    }
    return this.#producer;
  }

  #reset(): void {
    const producer = this.#producer;
    this.#producer = undefined;
    void producer?.then((connected) => connected.disconnect()).catch(() => {});
  }

  #armIdleTimer(): void {
    const idleTimeoutMs = this.config.idleTimeoutMs;
    if (idleTimeoutMs === undefined || this.#closed || this.#inFlight > 0) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.#reset(), idleTimeoutMs);
    this.#idleTimer.unref();
  }
}
