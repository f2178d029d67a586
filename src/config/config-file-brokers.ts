import { HookConfigError } from '../hooks/errors.ts';
import type { AmqpHooksConfig } from '../hooks/transports/amqp.ts';
import { type KafkaHooksConfig, kafkaClientSettings } from '../hooks/transports/kafka.ts';
import { coerceOption, type OptionSpec, type OptionValue, type RawOptions } from './option-table.ts';
import { amqpHooksConfig, amqpOptions } from './options-amqp.ts';
import { kafkaHooksConfig, kafkaOptions } from './options-kafka.ts';

/** The `--hooks-amqp-*` / `--hooks-kafka-*` settings a named broker hook starts from (flags when set). */
export interface InheritedBrokers {
  readonly amqp?: AmqpHooksConfig;
  readonly kafka?: KafkaHooksConfig;
}

type Report = (where: string, message: string) => void;
type Json = Record<string, unknown>;

/** Keys of an `amqp` named hook, each overriding the `--hooks-amqp-*` setting of the same name. */
export const amqpHookKeys = [
  'url',
  'exchange',
  'exchangeKind',
  'routingKey',
  'queuesPrefix',
  'declareExchange',
  'declareQueues',
  'durableExchange',
  'durableQueues',
  'autoDelete',
  'celery',
] as const;

/** Keys of a `kafka` named hook, each overriding the `--hooks-kafka-*` setting of the same name. */
export const kafkaHookKeys = ['brokers', 'topic', 'prefix', 'clientId'] as const;

/** The option table's defaults, as if no flag were given. */
function tableDefaults(specs: readonly OptionSpec[]): RawOptions {
  const options: Record<string, OptionValue> = {};
  for (const spec of specs) {
    if (spec.default !== undefined) options[spec.key] = coerceOption(spec, spec.default, 'default');
  }
  return options;
}

/** A string, else undefined: the file's schema check (config-file-check.ts) has reported a wrong type. */
function text(value: Json, key: string): string | undefined {
  const item = value[key];
  return typeof item === 'string' ? item : undefined;
}

/** true or false, else undefined (a wrong type is the schema check's to report). */
function yesNo(value: Json, key: string): boolean | undefined {
  const item = value[key];
  return typeof item === 'boolean' ? item : undefined;
}

/**
 * An `amqp` named hook's settings: its own keys over `--hooks-amqp-*` (when `--hooks-amqp-url` is set) or the
 * flags' defaults. `timeoutMs` is its publish timeout.
 */
export function namedAmqpConfig(
  value: Json,
  where: string,
  report: Report,
  inherited: AmqpHooksConfig | undefined,
  timeoutMs: number | undefined,
): AmqpHooksConfig | undefined {
  const url = text(value, 'url') ?? inherited?.url;
  if (url === undefined || url === '') {
    report(where, 'an amqp hook needs "url" (or --hooks-amqp-url)');
    return undefined;
  }
  if (!/^amqps?:\/\/./.test(url)) {
    report(`${where}.url`, 'must be an amqp:// or amqps:// URL');
    return undefined;
  }
  const base = inherited ?? amqpHooksConfig({ ...tableDefaults(amqpOptions), hooksAmqpUrl: url });
  if (base === undefined) return undefined;
  const routingKey = text(value, 'routingKey');
  const flag = (key: string, fallback: boolean): boolean => yesNo(value, key) ?? fallback;
  return Object.freeze({
    ...base,
    url,
    exchange: text(value, 'exchange') ?? base.exchange,
    exchangeKind: text(value, 'exchangeKind') ?? base.exchangeKind,
    // An empty routingKey goes back to one queue per event, as when the flag is unset.
    routingKey: routingKey === undefined ? base.routingKey : routingKey === '' ? undefined : routingKey,
    queuesPrefix: text(value, 'queuesPrefix') ?? base.queuesPrefix,
    declareExchange: flag('declareExchange', base.declareExchange),
    declareQueues: flag('declareQueues', base.declareQueues),
    durableExchange: flag('durableExchange', base.durableExchange),
    durableQueues: flag('durableQueues', base.durableQueues),
    autoDelete: flag('autoDelete', base.autoDelete),
    celery: flag('celery', base.celery),
    publishTimeoutMs: timeoutMs ?? base.publishTimeoutMs,
  });
}

/**
 * A `kafka` named hook's settings: its own keys over `--hooks-kafka-*` (when `--hooks-kafka-urls` is set) or
 * the flags' defaults. `timeoutMs` is its send timeout.
 */
export function namedKafkaConfig(
  value: Json,
  where: string,
  report: Report,
  inherited: KafkaHooksConfig | undefined,
  timeoutMs: number | undefined,
): KafkaHooksConfig | undefined {
  const raw = value.brokers;
  const listed = typeof raw === 'string' ? raw.split(',').map((item) => item.trim()) : raw;
  if (
    listed !== undefined &&
    (!Array.isArray(listed) ||
      !listed.every((item) => typeof item === 'string' && /^[^\s:]+:\d+$/.test(item)))
  ) {
    report(`${where}.brokers`, 'must list host:port addresses');
    return undefined;
  }
  const brokers = (listed as string[] | undefined) ?? inherited?.brokers;
  if (brokers === undefined || brokers.length === 0) {
    report(where, 'a kafka hook needs "brokers" (or --hooks-kafka-urls)');
    return undefined;
  }
  const base =
    inherited ?? kafkaHooksConfig({ ...tableDefaults(kafkaOptions), hooksKafkaUrls: [...brokers] });
  if (base === undefined) return undefined;
  const topic = text(value, 'topic');
  const prefix = text(value, 'prefix');
  const clientId = text(value, 'clientId');
  const config: KafkaHooksConfig = {
    ...base,
    brokers: [...brokers],
    ...(topic !== undefined ? { topic: topic === '' ? undefined : topic } : {}),
    ...(prefix !== undefined ? { prefix: prefix === '' ? undefined : prefix } : {}),
    ...(clientId !== undefined ? { clientId } : {}),
    ...(timeoutMs !== undefined ? { sendTimeoutMs: timeoutMs } : {}),
  };
  try {
    kafkaClientSettings(config);
  } catch (error) {
    if (!(error instanceof HookConfigError)) throw error;
    report(where, error.message);
    return undefined;
  }
  return Object.freeze(config);
}
