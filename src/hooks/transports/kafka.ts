import zlib from 'node:zlib';
import type { Producer as PlatformaticProducer, ProducerOptions } from '@platformatic/kafka';
import { withTimeout } from '../../backends/backend.ts';
import { HookConfigError } from '../errors.ts';
import { AbortWatch } from './abort-watch.ts';
import { BatchSender } from './batch-sender.ts';
import { kafkaCloudEventHeaders } from './cloudevents-bindings.ts';
import { DeadlineQueue } from './deadlines.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './types.ts';

/** The codecs rustus (librdkafka) offers; the client, @platformatic/kafka, produces every one of them. */
export const knownKafkaCompressions = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
export type KafkaCompression = (typeof knownKafkaCompressions)[number];

type Producer = PlatformaticProducer<string, string, string, string>;
type ClientOptions = ProducerOptions<string, string, string, string>;

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
  throw new HookConfigError(`Kafka required acks must be all, -1, 0 or 1, got "${text}"`);
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
  /**
   * `linger.ms`: how long an event waits for company; 0 sends as soon as no request is on its way. librdkafka's
   * default, 5 ms (since 1.5, so rustus's too), costs a post event that much latency and halves the produce
   * requests of a busy server: on the hooks bench, Wharf's CPU per event fell by about a third, Kafka's by a sixth.
   */
  readonly lingerMs: number;
  /** `batch.num.messages`. */
  readonly maxMessages: number;
  /** `batch.size`: below the broker's message.max.bytes (1 MiB by default), which bounds a record batch. */
  readonly maxBytes: number;
}

const defaultBatching: KafkaBatching = { lingerMs: 5, maxMessages: 10_000, maxBytes: 1_000_000 };

interface ClientSettings {
  /** Options for @platformatic/kafka's Producer (serializers are added when it is created). */
  readonly client: ClientOptions;
  readonly sendTimeoutMs: number;
  readonly requiredAcks: -1 | 0 | 1;
  readonly compression: KafkaCompression;
  readonly batching: KafkaBatching;
}

/** librdkafka's `sasl.mechanisms` values that the client speaks, by their lowercase spelling. */
const saslMechanisms = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
} as const;

/**
 * Maps the configuration, and the librdkafka-named extra options, onto @platformatic/kafka's producer options.
 * An extra option with no equivalent is a startup error naming it, never silently ignored.
 */
export function kafkaClientSettings(config: KafkaHooksConfig): ClientSettings {
  const client: ClientOptions = {
    bootstrapBrokers: [...config.brokers],
    clientId: config.clientId ?? 'wharf',
    connectTimeout: Math.min(config.sendTimeoutMs, 3000),
    requestTimeout: config.sendTimeoutMs,
    timeout: config.sendTimeoutMs,
    // The outbox retries with its own backoff; the client should fail fast instead of holding a delivery.
    retries: 2,
    retryDelay: 100,
    autocreateTopics: true,
    // Wharf does not rely on the broker's de-duplication (every record carries its event-id header);
    // librdkafka's enable.idempotence=true turns it on.
    idempotent: false,
  };
  let sendTimeoutMs = config.sendTimeoutMs;
  let requiredAcks = config.requiredAcks;
  let compression = config.compression;
  let username: string | undefined;
  let password: string | undefined;
  let mechanism = 'plain';
  let tls: { rejectUnauthorized?: boolean } | undefined;
  let batching = defaultBatching;
  for (const [key, value] of Object.entries(config.extraOptions)) {
    switch (key) {
      case 'bootstrap.servers':
      case 'metadata.broker.list':
        client.bootstrapBrokers = value.split(',').map((item) => item.trim());
        break;
      case 'client.id':
        client.clientId = value;
        break;
      case 'allow.auto.create.topics':
        client.autocreateTopics = booleanOption(key, value);
        break;
      case 'security.protocol': {
        const protocol = value.toLowerCase();
        if (!['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'].includes(protocol)) {
          throw new HookConfigError(`Kafka security.protocol "${value}" is not supported`);
        }
        tls = protocol.endsWith('ssl') ? (tls ?? {}) : undefined;
        break;
      }
      case 'enable.ssl.certificate.verification':
        tls = { ...tls, rejectUnauthorized: booleanOption(key, value) };
        break;
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
        client.connectTimeout = integerOption(key, value);
        break;
      case 'message.timeout.ms':
      case 'delivery.timeout.ms':
        sendTimeoutMs = integerOption(key, value);
        // librdkafka reads 0 as "no limit"; Wharf gives up on a record after a time so the outbox sends it again,
        // and would otherwise give up on every record at once.
        if (sendTimeoutMs === 0)
          throw new HookConfigError(
            `Kafka extra option ${key}=0 (no limit in librdkafka) is not supported: give a time in milliseconds`,
          );
        break;
      case 'enable.idempotence':
        client.idempotent = booleanOption(key, value);
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
        client.metadataMaxAge = integerOption(key, value);
        break;
      case 'message.send.max.retries':
      case 'retries':
        client.retries = integerOption(key, value);
        break;
      case 'retry.backoff.ms':
        client.retryDelay = integerOption(key, value);
        break;
      case 'max.in.flight.requests.per.connection':
      case 'max.in.flight':
        client.maxInflights = Math.max(1, integerOption(key, value));
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
          `Kafka extra option "${key}" has no equivalent in Wharf's Kafka client (@platformatic/kafka); see docs/hooks.md`,
        );
    }
  }
  if (client.idempotent === true && requiredAcks !== -1) {
    // The broker de-duplicates only what every in-sync replica acknowledged; the client would fail each send.
    throw new HookConfigError('Kafka enable.idempotence=true needs acks all (-1)');
  }
  if (tls !== undefined) client.tls = tls;
  if (username !== undefined && password !== undefined) {
    const saslMechanism = saslMechanisms[mechanism as keyof typeof saslMechanisms];
    if (saslMechanism === undefined) {
      throw new HookConfigError(
        `Kafka SASL mechanism "${mechanism}" is not supported (use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`,
      );
    }
    client.sasl = { mechanism: saslMechanism, username, password };
  }
  client.requestTimeout = Math.min(client.requestTimeout ?? sendTimeoutMs, sendTimeoutMs);
  client.timeout = sendTimeoutMs;
  return { client, sendTimeoutMs, requiredAcks, compression, batching };
}

/** zstd comes from node:zlib from Node 22.15 (and 23.8) on; on older ones, from WebAssembly (below). */
const zstdInZlib = typeof Reflect.get(zlib, 'zstdCompressSync') === 'function';

let wasmZstd: Promise<void> | undefined;

/**
 * Gives @platformatic/kafka a zstd codec where node:zlib has none (Node 20): @bokuweb/zstd-wasm, WebAssembly
 * shipped in its npm package, fills the client's own codec table (`compressionsAlgorithms`, a public export).
 * Its output is standard zstd (node:zlib and librdkafka read it). Loaded once, only when zstd is used there.
 */
export function ensureZstdCodec(): Promise<void> {
  if (zstdInZlib) return Promise.resolve();
  wasmZstd ??= (async () => {
    const [{ compressionsAlgorithms }, zstd] = await Promise.all([
      import('@platformatic/kafka'),
      import('@bokuweb/zstd-wasm'),
    ]);
    await zstd.init();
    const asBuffer = (bytes: Uint8Array): Buffer =>
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // The client hands its codecs a Buffer or its own DynamicBuffer, whose `buffer` is the bytes joined.
    const bytesOf = (data: Uint8Array | { readonly buffer: Buffer }): Uint8Array =>
      data instanceof Uint8Array ? data : data.buffer;
    Object.assign(compressionsAlgorithms.zstd, {
      // librdkafka's default level.
      compressSync: (data: Uint8Array | { readonly buffer: Buffer }) =>
        asBuffer(zstd.compress(bytesOf(data), 3)),
      decompressSync: (data: Uint8Array | { readonly buffer: Buffer }) =>
        asBuffer(zstd.decompress(bytesOf(data))),
      available: true,
    });
  })();
  wasmZstd.catch(() => {
    wasmZstd = undefined;
  });
  return wasmZstd;
}

/** Checks a compression name: none, gzip, snappy, lz4 or zstd, as rustus offers them. */
export function kafkaCompression(name: string): KafkaCompression {
  const lowered = name.trim().toLowerCase();
  if (!(knownKafkaCompressions as readonly string[]).includes(lowered)) {
    throw new HookConfigError(
      `unknown Kafka compression "${name}"; expected one of ${knownKafkaCompressions.join(', ')}`,
    );
  }
  return lowered as KafkaCompression;
}

/** The innermost errors of a client error: a send fails with an AggregateError of per-broker or per-partition ones. */
function leafErrors(error: unknown): unknown[] {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.flatMap(leafErrors);
  return [error];
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The broker's error code is in `apiId` (MESSAGE_TOO_LARGE, TOPIC_AUTHORIZATION_FAILED, ...), the cause of a
  // network error (ECONNREFUSED, ...) in `cause`.
  const details = leafErrors(error)
    .filter((leaf) => leaf !== error)
    .map((leaf) => {
      if (!(leaf instanceof Error)) return String(leaf);
      const apiId = Reflect.get(leaf, 'apiId');
      const cause = leaf.cause instanceof Error ? ` (${leaf.cause.message})` : '';
      return `${typeof apiId === 'string' ? `${apiId}: ` : ''}${leaf.message}${cause}`;
    });
  return `${error.message}${details.length > 0 ? ` ${[...new Set(details)].join('; ')}` : ''}`;
}

/** One event on its way: its Kafka record (text only), as the client's `send` takes it. */
interface OutgoingRecord {
  readonly topic: string;
  readonly key: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
  /** What it weighs in a batch (see {@link recordSize}). */
  readonly size: number;
}

/** What a record weighs in a batch: its key, value and headers, plus a record's framing. */
function recordSize(key: string, value: string, headers: Readonly<Record<string, string>>): number {
  let bytes = 64 + Buffer.byteLength(key) + Buffer.byteLength(value);
  for (const name in headers) bytes += name.length + Buffer.byteLength(headers[name] as string);
  return bytes;
}

/**
 * The broker answered and refused records (too large, invalid): that may be one record of the batch. A dropped
 * connection or a timeout is everyone's, and sending each record again alone would only multiply the waiting.
 */
function brokerRefusedRecords(error: unknown): boolean {
  const leaves = leafErrors(error);
  return leaves.every(
    (leaf) =>
      leaf instanceof Error &&
      Reflect.get(leaf, 'code') === 'PLT_KFK_PROTOCOL' &&
      Reflect.get(leaf, 'canRetry') === false,
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
  /** Created on first use: the client is loaded only when a Kafka hook is actually used. */
  #producer: Promise<Producer> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #closed = false;
  /** Set by keepConnections(false): the producer closes whenever no delivery is in flight. */
  #replaced = false;
  readonly #batches: BatchSender<OutgoingRecord>;
  /** Gives up on deliveries not acknowledged in time (one timer for all, not one per event). */
  readonly #late: DeadlineQueue;

  constructor(config: KafkaHooksConfig) {
    this.config = config;
    this.#settings = kafkaClientSettings(config);
    this.#late = new DeadlineQueue(this.#settings.sendTimeoutMs);
    const batching = this.#settings.batching;
    this.#batches = new BatchSender<OutgoingRecord>({
      sendBatch: (records) => this.#sendBatch(records),
      sizeOf: (record) => record.size,
      maxItems: batching.maxMessages,
      maxBytes: batching.maxBytes,
      lingerMs: batching.lingerMs,
      mayBeOneItem: brokerRefusedRecords,
    });
  }

  describe(hook: string): string {
    return `kafka:${this.config.brokers.join(',')}/${kafkaTopic(this.config, hook)}`;
  }

  async load(): Promise<void> {
    await import('@platformatic/kafka');
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
    // Given up on (timed out, or the engine closed): a record still waiting for its batch is then not sent. A
    // plain flag, and one promise settled by whichever comes first, rather than an AbortController and a race of
    // three promises for every event.
    const giveUp: { aborted: boolean; reason: unknown } = { aborted: false, reason: undefined };
    const outcome = await new Promise<unknown>((resolve) => {
      let done = false;
      let stopWatching: (() => void) | undefined;
      const finish = (value: unknown): void => {
        if (done) return;
        done = true;
        this.#late.delete(late);
        // The signal is the engine's, shared by every delivery: leave no listener behind.
        stopWatching?.();
        resolve(value);
      };
      const late = (): void => finish('timed_out');
      this.#late.add(late);
      stopWatching = this.#aborts.on(delivery.signal, () => finish('aborted'));
      this.#batches.send(this.#record(delivery), giveUp).then(
        () => finish('delivered'),
        (error: unknown) => finish(error),
      );
    });
    this.#inFlight -= 1;
    this.#armIdleTimer();
    if (outcome === 'timed_out' || outcome === 'aborted') {
      giveUp.reason = new Error(`the delivery ${outcome}`);
      giveUp.aborted = true;
    }
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
    if (producer !== undefined) await (await producer.catch(() => undefined))?.close().catch(() => {});
  }

  #record(delivery: HookDelivery): OutgoingRecord {
    const headers: Record<string, string> = {
      'event-id': delivery.eventId,
      'hook-name': delivery.hook,
      'content-type': 'application/json',
    };
    // CloudEvents Kafka binding: its `content-type`, and `ce_*` attribute headers in binary mode.
    if (delivery.cloudEvent !== undefined)
      Object.assign(headers, kafkaCloudEventHeaders(delivery.cloudEvent));
    // The upload's event number (Kafka header values are bytes: its decimal text).
    if (delivery.sequence !== undefined) headers['upload-sequence'] = String(delivery.sequence);
    const key = delivery.uploadId;
    const value = delivery.payload;
    return {
      topic: kafkaTopic(this.config, delivery.hook),
      key,
      value,
      headers,
      size: recordSize(key, value, headers),
    };
  }

  /** One produce request for a batch, its records in the order they came. */
  async #sendBatch(records: readonly OutgoingRecord[]): Promise<void> {
    if (this.#closed) throw new Error('the Kafka hook transport is closed');
    const timeoutMs = this.#settings.sendTimeoutMs;
    const sending = this.#connected().then((producer) =>
      producer.send({
        // The records as they are: the client reads topic, key, value and headers, and ignores `size`.
        messages: records as OutgoingRecord[],
        acks: this.#settings.requiredAcks,
        compression: this.#settings.compression,
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

  /** The producer, created on first use; it connects lazily, so this asks for the cluster's metadata once. */
  #connected(): Promise<Producer> {
    if (this.#producer === undefined) {
      const connecting = import('@platformatic/kafka').then(async ({ Producer, stringSerializers }) => {
        if (this.#settings.compression === 'zstd') await ensureZstdCodec();
        const producer: Producer = new Producer({ ...this.#settings.client, serializers: stringSerializers });
        try {
          await producer.metadata({ topics: [] });
        } catch (error) {
          await producer.close().catch(() => {});
          throw error;
        }
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
    void producer?.then((connected) => connected.close()).catch(() => {});
  }

  /**
   * false for a hook that was replaced (engine.ts): its producer (and its connections) closes as soon as no
   * delivery is in flight (now when none is), and a later delivery (an event stored for the old declaration,
   * retried) makes one that closes after it in turn. true: kept again (the declaration came back).
   */
  keepConnections(keep: boolean): void {
    this.#replaced = !keep;
    if (!keep && this.#inFlight === 0) {
      clearTimeout(this.#idleTimer);
      this.#reset();
    }
  }

  #armIdleTimer(): void {
    if (this.#replaced && !this.#closed && this.#inFlight === 0) {
      clearTimeout(this.#idleTimer);
      this.#reset();
      return;
    }
    const idleTimeoutMs = this.config.idleTimeoutMs;
    if (idleTimeoutMs === undefined || this.#closed || this.#inFlight > 0) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => this.#reset(), idleTimeoutMs);
    this.#idleTimer.unref();
  }
}
