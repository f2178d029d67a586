import type { AmqpHooksConfig } from '../hooks/transports/amqp.ts';
import type { OptionSpec, RawOptions } from './option-table.ts';

const group = 'AMQP hooks (RabbitMQ, Celery)';

/** `--hooks-amqp-*`: rustus's flag names, environment names and defaults. */
export const amqpOptions: readonly OptionSpec[] = [
  {
    key: 'hooksAmqpUrl',
    flag: 'hooks-amqp-url',
    env: ['WHARF_HOOKS_AMQP_URL', 'RUSTUS_HOOKS_AMQP_URL'],
    kind: 'string',
    help: 'RabbitMQ connection string (amqp://user:password@host:5672/vhost). Setting it turns AMQP hooks on: every event is published (never blocking), with publisher confirms.',
    group,
  },
  {
    key: 'hooksAmqpExchange',
    flag: 'hooks-amqp-exchange',
    env: ['WHARF_HOOKS_AMQP_EXCHANGE', 'RUSTUS_HOOKS_AMQP_EXCHANGE'],
    kind: 'string',
    default: 'rustus',
    help: 'Exchange the events are published to.',
    group,
  },
  {
    key: 'hooksAmqpExchangeKind',
    flag: 'hooks-amqp-exchange-kind',
    env: ['WHARF_HOOKS_AMQP_EXCHANGE_KIND', 'RUSTUS_HOOKS_AMQP_EXCHANGE_KIND'],
    kind: 'string',
    default: 'topic',
    help: 'Exchange type used when declaring it (topic, direct, fanout, headers, ...).',
    group,
  },
  {
    key: 'hooksAmqpRoutingKey',
    flag: 'hooks-amqp-routing-key',
    env: ['WHARF_HOOKS_AMQP_ROUTING_KEY', 'RUSTUS_HOOKS_AMQP_ROUTING_KEY'],
    kind: 'string',
    help: 'One routing key (and queue) for every event. Unset: each event uses {prefix}.{event}, e.g. rustus.pre-create.',
    group,
  },
  {
    key: 'hooksAmqpQueuesPrefix',
    flag: 'hooks-amqp-queues-prefix',
    env: ['WHARF_HOOKS_AMQP_QUEUES_PREFIX', 'RUSTUS_HOOKS_AMQP_QUEUES_PREFIX'],
    kind: 'string',
    default: 'rustus',
    help: 'Prefix of the per-event queues and routing keys ({prefix}.{event}) and of Celery task names.',
    group,
  },
  {
    key: 'hooksAmqpDeclareExchange',
    flag: 'hooks-amqp-declare-exchange',
    env: ['WHARF_HOOKS_AMQP_DECLARE_EXCHANGE', 'RUSTUS_HOOKS_AMQP_DECLARE_EXCHANGE'],
    kind: 'boolean',
    default: 'false',
    help: 'Declare the exchange on every new connection.',
    group,
  },
  {
    key: 'hooksAmqpDeclareQueues',
    flag: 'hooks-amqp-declare-queues',
    env: ['WHARF_HOOKS_AMQP_DECLARE_QUEUES', 'RUSTUS_HOOKS_AMQP_DECLARE_QUEUES'],
    kind: 'boolean',
    default: 'false',
    help: 'Declare the queue of every event ({prefix}.{event}, or the routing key) and bind it to the exchange with its routing key.',
    group,
  },
  {
    key: 'hooksAmqpDurableExchange',
    flag: 'hooks-amqp-durable-exchange',
    // rustus 1.0 spells this one flag --hooks_amqp_durable_exchange; the parser accepts underscores everywhere.
    env: ['WHARF_HOOKS_AMQP_DURABLE_EXCHANGE', 'RUSTUS_HOOKS_AMQP_DURABLE_EXCHANGE'],
    kind: 'boolean',
    default: 'false',
    help: 'Declare the exchange durable.',
    group,
  },
  {
    key: 'hooksAmqpDurableQueues',
    flag: 'hooks-amqp-durable-queues',
    env: ['WHARF_HOOKS_AMQP_DURABLE_QUEUES', 'RUSTUS_HOOKS_AMQP_DURABLE_QUEUES'],
    kind: 'boolean',
    default: 'false',
    help: 'Declare the queues durable and publish messages persistent (delivery mode 2).',
    group,
  },
  {
    key: 'hooksAmqpAutoDelete',
    flag: 'hooks-amqp-auto-delete',
    env: ['WHARF_HOOKS_AMQP_AUTO_DELETE', 'RUSTUS_HOOKS_AMQP_AUTO_DELETE'],
    kind: 'boolean',
    default: 'false',
    help: 'Declare the exchange and queues auto-delete.',
    group,
  },
  {
    key: 'hooksAmqpCelery',
    flag: 'hooks-amqp-celery',
    env: ['WHARF_HOOKS_AMQP_CELERY', 'RUSTUS_HOOKS_AMQP_CELERY'],
    kind: 'boolean',
    default: 'false',
    help: 'Publish Celery (protocol v2) task messages: task {prefix}.{event} (rustus.post-finish, ...) with the payload as its one argument.',
    group,
  },
  {
    key: 'hooksAmqpConnectionPoolSize',
    flag: 'hooks-amqp-connection-pool-size',
    env: ['WHARF_HOOKS_AMQP_CONNECTION_POOL_SIZE', 'RUSTUS_HOOKS_AMQP_CONNECTION_POOL_SIZE'],
    kind: 'integer',
    min: 1,
    default: '10',
    help: 'Connections to RabbitMQ opened at most (opened lazily).',
    group,
  },
  {
    key: 'hooksAmqpChannelPoolSize',
    flag: 'hooks-amqp-channel-pool-size',
    env: ['WHARF_HOOKS_AMQP_CHANNEL_POOL_SIZE', 'RUSTUS_HOOKS_AMQP_CHANNEL_POOL_SIZE'],
    kind: 'integer',
    min: 1,
    default: '10',
    help: 'Channels opened at most on each connection.',
    group,
  },
  {
    key: 'hooksAmqpIdleConnectionTimeout',
    flag: 'hooks-amqp-idle-connection-timeout',
    env: ['WHARF_HOOKS_AMQP_IDLE_CONNECTION_TIMEOUT', 'RUSTUS_HOOKS_AMQP_IDLE_CONNECTION_TIMEOUT'],
    kind: 'integer',
    min: 1,
    help: 'Seconds after which an unused connection is closed. Unset: kept open.',
    group,
  },
  {
    key: 'hooksAmqpIdleChannelsTimeout',
    flag: 'hooks-amqp-idle-channels-timeout',
    env: ['WHARF_HOOKS_AMQP_IDLE_CHANNELS_TIMEOUT', 'RUSTUS_HOOKS_AMQP_IDLE_CHANNELS_TIMEOUT'],
    kind: 'integer',
    min: 1,
    help: 'Seconds after which an unused channel is closed. Unset: kept open.',
    group,
  },
  {
    key: 'hooksAmqpPublishTimeout',
    flag: 'hooks-amqp-publish-timeout',
    env: ['WHARF_HOOKS_AMQP_PUBLISH_TIMEOUT'],
    kind: 'integer',
    min: 1,
    default: '10',
    help: 'Seconds a publish (or a connection attempt) may wait for RabbitMQ before it counts as failed; also how long shutdown waits for RabbitMQ to confirm the close of each connection before it drops the connection (logged as a warning).',
    group,
  },
];

function optionalSeconds(options: RawOptions, key: string): number | undefined {
  const value = options[key];
  return typeof value === 'number' ? value * 1000 : undefined;
}

function textOf(options: RawOptions, key: string): string {
  const value = options[key];
  return typeof value === 'string' ? value : '';
}

/** The AMQP hooks configuration, or undefined when no `--hooks-amqp-url` is set. */
export function amqpHooksConfig(options: RawOptions): AmqpHooksConfig | undefined {
  const url = textOf(options, 'hooksAmqpUrl');
  if (url === '') return undefined;
  const routingKey = textOf(options, 'hooksAmqpRoutingKey');
  return Object.freeze({
    url,
    exchange: textOf(options, 'hooksAmqpExchange'),
    exchangeKind: textOf(options, 'hooksAmqpExchangeKind'),
    routingKey: routingKey === '' ? undefined : routingKey,
    queuesPrefix: textOf(options, 'hooksAmqpQueuesPrefix'),
    declareExchange: options.hooksAmqpDeclareExchange === true,
    declareQueues: options.hooksAmqpDeclareQueues === true,
    durableExchange: options.hooksAmqpDurableExchange === true,
    durableQueues: options.hooksAmqpDurableQueues === true,
    autoDelete: options.hooksAmqpAutoDelete === true,
    celery: options.hooksAmqpCelery === true,
    connectionPoolSize: Number(options.hooksAmqpConnectionPoolSize),
    channelPoolSize: Number(options.hooksAmqpChannelPoolSize),
    idleConnectionTimeoutMs: optionalSeconds(options, 'hooksAmqpIdleConnectionTimeout'),
    idleChannelsTimeoutMs: optionalSeconds(options, 'hooksAmqpIdleChannelsTimeout'),
    publishTimeoutMs: Number(options.hooksAmqpPublishTimeout) * 1000,
  });
}
