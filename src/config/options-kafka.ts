import { HookConfigError } from '../hooks/errors.ts';
import {
  type KafkaHooksConfig,
  kafkaClientSettings,
  kafkaCompression,
  knownKafkaCompressions,
  parseKafkaExtraOptions,
  parseRequiredAcks,
} from '../hooks/transports/kafka.ts';
import { ConfigError, type OptionSpec, type RawOptions } from './option-table.ts';

const group = 'Kafka hooks';

/** `--hooks-kafka-*`: rustus's flag and environment names. */
export const kafkaOptions: readonly OptionSpec[] = [
  {
    key: 'hooksKafkaUrls',
    flag: 'hooks-kafka-urls',
    env: ['WHARF_HOOKS_KAFKA_URLS', 'RUSTUS_HOOKS_KAFKA_URLS'],
    kind: 'list',
    default: '',
    help: 'Kafka bootstrap brokers, host:port, comma separated (bootstrap.servers). Setting it turns Kafka hooks on: every event is sent (never blocking), keyed by upload id, acknowledged before it counts.',
    group,
  },
  {
    key: 'hooksKafkaClientId',
    flag: 'hooks-kafka-client-id',
    env: ['WHARF_HOOKS_KAFKA_CLIENT_ID', 'RUSTUS_HOOKS_KAFKA_CLIENT_ID'],
    kind: 'string',
    help: 'Producer client.id (default wharf).',
    group,
  },
  {
    key: 'hooksKafkaTopic',
    flag: 'hooks-kafka-topic',
    env: ['WHARF_HOOKS_KAFKA_TOPIC', 'RUSTUS_HOOKS_KAFKA_TOPIC'],
    kind: 'string',
    help: 'One topic for every event. Without it (and without a prefix) each event goes to a topic named after it.',
    group,
  },
  {
    key: 'hooksKafkaPrefix',
    flag: 'hooks-kafka-prefix',
    env: ['WHARF_HOOKS_KAFKA_PREFIX', 'RUSTUS_HOOKS_KAFKA_PREFIX'],
    kind: 'string',
    help: 'Topic {prefix}-{event} (e.g. uploads-post-finish); with --hooks-kafka-topic too, {prefix}-{topic}.',
    group,
  },
  {
    key: 'hooksKafkaRequiredAcks',
    flag: 'hooks-kafka-required-acks',
    env: ['WHARF_HOOKS_KAFKA_REQUIRED_ACKS', 'RUSTUS_HOOKS_KAFKA_REQUIRED_ACKS'],
    kind: 'string',
    default: 'all',
    help: 'Replicas that must acknowledge a message (request.required.acks): all (-1), 1, or 0 (no acknowledgement: delivery is then not guaranteed).',
    group,
  },
  {
    key: 'hooksKafkaCompression',
    flag: 'hooks-kafka-compression',
    env: ['WHARF_HOOKS_KAFKA_COMPRESSION', 'RUSTUS_HOOKS_KAFKA_COMPRESSION'],
    kind: 'enum',
    choices: knownKafkaCompressions,
    default: 'none',
    help: 'Compression codec (compression.codec): none, gzip, snappy, lz4 or zstd.',
    group,
  },
  {
    key: 'hooksKafkaIdleTimeout',
    flag: 'hooks-kafka-idle-timeout',
    env: ['WHARF_HOOKS_KAFKA_IDLE_TIMEOUT', 'RUSTUS_HOOKS_KAFKA_IDLE_TIMEOUT'],
    kind: 'integer',
    min: 1,
    help: 'Seconds without a message after which the connection is closed (reopened on the next event). Unset: kept open.',
    group,
  },
  {
    key: 'hooksKafkaSendTimeout',
    flag: 'hooks-kafka-send-timeout',
    env: ['WHARF_HOOKS_KAFKA_SEND_TIMEOUT', 'RUSTUS_HOOKS_KAFKA_SEND_TIMEOUT'],
    kind: 'integer',
    min: 1,
    default: '10',
    help: 'Seconds a message may wait for its acknowledgement before the attempt counts as failed (and is retried).',
    group,
  },
  {
    key: 'hooksKafkaExtraOptions',
    flag: 'hooks-kafka-extra-options',
    env: ['WHARF_HOOKS_KAFKA_EXTRA_OPTIONS', 'RUSTUS_HOOKS_KAFKA_EXTRA_OPTIONS'],
    kind: 'string',
    help: 'More client settings, key=value;key=value, with librdkafka names: bootstrap.servers, client.id, allow.auto.create.topics, security.protocol, enable.ssl.certificate.verification, sasl.mechanism, sasl.username, sasl.password, request.timeout.ms, socket.connection.setup.timeout.ms, message.timeout.ms, acks, compression.codec, enable.idempotence, metadata.max.age.ms, message.send.max.retries, retry.backoff.ms, max.in.flight.requests.per.connection, linger.ms (queue.buffering.max.ms), batch.num.messages, batch.size. Any other is refused at startup, named.',
    group,
  },
];

function textOf(options: RawOptions, key: string): string | undefined {
  const value = options[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Runs one check of a Kafka option; its error names that option's flag. */
function naming<T>(flag: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof HookConfigError) throw new ConfigError(`--${flag}: ${error.message}`);
    throw error;
  }
}

/** The Kafka hooks configuration, or undefined when no `--hooks-kafka-urls` is set. */
export function kafkaHooksConfig(options: RawOptions): KafkaHooksConfig | undefined {
  const brokers = Array.isArray(options.hooksKafkaUrls) ? options.hooksKafkaUrls : [];
  if (brokers.length === 0) return undefined;
  try {
    const idle = options.hooksKafkaIdleTimeout;
    const config: KafkaHooksConfig = {
      brokers,
      clientId: textOf(options, 'hooksKafkaClientId'),
      topic: textOf(options, 'hooksKafkaTopic'),
      prefix: textOf(options, 'hooksKafkaPrefix'),
      requiredAcks: naming('hooks-kafka-required-acks', () =>
        parseRequiredAcks(textOf(options, 'hooksKafkaRequiredAcks') ?? 'all'),
      ),
      compression: naming('hooks-kafka-compression', () =>
        kafkaCompression(textOf(options, 'hooksKafkaCompression') ?? 'none'),
      ),
      idleTimeoutMs: typeof idle === 'number' ? idle * 1000 : undefined,
      sendTimeoutMs: Number(options.hooksKafkaSendTimeout) * 1000,
      extraOptions: naming('hooks-kafka-extra-options', () =>
        parseKafkaExtraOptions(textOf(options, 'hooksKafkaExtraOptions') ?? ''),
      ),
    };
    // Refuses extra options the client cannot honour now, at startup, not at the first event.
    naming('hooks-kafka-extra-options', () => kafkaClientSettings(config));
    return Object.freeze(config);
  } catch (error) {
    if (error instanceof HookConfigError) throw new ConfigError(`--hooks-kafka-*: ${error.message}`);
    throw error;
  }
}
