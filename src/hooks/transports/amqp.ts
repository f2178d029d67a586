import { hostname } from 'node:os';
import type { ConfirmChannel, Options } from 'amqplib';
import { uploadEventNames } from '../events.ts';
import { AbortWatch } from './abort-watch.ts';
import { AmqpChannelPool, type PooledChannel } from './amqp-pool.ts';
import { amqpCloudEventProperties } from './cloudevents-bindings.ts';
import { DeadlineQueue } from './deadlines.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './types.ts';

/** `--hooks-amqp-*`, resolved. Names and defaults follow rustus. */
export interface AmqpHooksConfig {
  /** `amqp://user:password@host:port/vhost`; never logged as is (it carries the password). */
  readonly url: string;
  readonly exchange: string;
  /** Any exchange type the broker knows (`topic`, `direct`, `fanout`, `headers`, plugins' types). */
  readonly exchangeKind: string;
  /** One routing key (and queue) for every event; otherwise `{queuesPrefix}.{event}`. */
  readonly routingKey: string | undefined;
  readonly queuesPrefix: string;
  readonly declareExchange: boolean;
  readonly declareQueues: boolean;
  readonly durableExchange: boolean;
  /** Durable queues; messages are then published persistent (delivery mode 2). */
  readonly durableQueues: boolean;
  /** `auto_delete` on the declared exchange and queues (rustus 1.0). */
  readonly autoDelete: boolean;
  /** Publish Celery protocol v2 task messages (task `{queuesPrefix}.{event}`). */
  readonly celery: boolean;
  readonly connectionPoolSize: number;
  readonly channelPoolSize: number;
  readonly idleConnectionTimeoutMs: number | undefined;
  readonly idleChannelsTimeoutMs: number | undefined;
  /** How long one publish may wait for the broker's confirm before it counts as failed. */
  readonly publishTimeoutMs: number;
}

/** The URL with its password masked, for logs and run records. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'amqp://<unparsable url>';
  }
}

/** The routing key an event is published with: the fixed key, or `{prefix}.{event}`. */
export function amqpRoutingKey(config: AmqpHooksConfig, hook: string): string {
  return config.routingKey ?? `${config.queuesPrefix}.${hook}`;
}

/** The queues `--hooks-amqp-declare-queues` declares: the routing key's, or one per event. */
export function amqpQueueNames(config: AmqpHooksConfig): string[] {
  if (config.routingKey !== undefined) return [config.routingKey];
  return uploadEventNames.map((event) => `${config.queuesPrefix}.${event}`);
}

export interface AmqpMessage {
  readonly routingKey: string;
  readonly body: Buffer;
  readonly properties: Options.Publish;
}

const celeryOrigin = `wharf-${process.pid}@${hostname()}`;
const reprLimit = 1024;

/** A short Python-ish repr of the task arguments: Celery only logs it. */
function argumentsRepr(payload: string): string {
  const text = payload.length <= reprLimit ? payload : `${payload.slice(0, reprLimit)}...`;
  return `(${text},)`;
}

/**
 * The message for one delivery. The event id is the AMQP `message_id` (and the Celery task id), so a
 * consumer can drop a message the outbox had to publish twice.
 */
export function amqpMessage(config: AmqpHooksConfig, delivery: HookDelivery): AmqpMessage {
  const routingKey = amqpRoutingKey(config, delivery.hook);
  const properties: Options.Publish = {
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    messageId: delivery.eventId,
    // The event name, so a consumer of a single routing-key queue can tell events apart.
    type: delivery.hook,
    timestamp: Math.floor(Date.now() / 1000),
    deliveryMode: config.durableQueues || config.celery ? 2 : 1,
    headers: {},
  };
  if (!config.celery) {
    const headers: Record<string, string | number> = {};
    if (delivery.cloudEvent !== undefined) {
      // CloudEvents AMQP binding: the content type says the mode; binary attributes are `cloudEvents_*` headers.
      const cloudEvent = amqpCloudEventProperties(delivery.cloudEvent);
      properties.contentType = cloudEvent.contentType;
      Object.assign(headers, cloudEvent.headers);
    }
    // The upload's event number, so a consumer can order an upload's events without parsing the body.
    if (delivery.sequence !== undefined) headers['upload-sequence'] = delivery.sequence;
    properties.headers = headers;
    return { routingKey, body: Buffer.from(delivery.payload, 'utf8'), properties };
  }

  // Celery message protocol v2: headers carry the task, the body is [args, kwargs, embed].
  const taskId = delivery.eventId;
  properties.correlationId = taskId;
  properties.replyTo = '';
  properties.priority = 0;
  properties.headers = {
    lang: 'py',
    task: `${config.queuesPrefix}.${delivery.hook}`,
    id: taskId,
    root_id: taskId,
    parent_id: null,
    group: null,
    group_index: null,
    shadow: null,
    eta: null,
    expires: null,
    retries: 0,
    timelimit: [null, null],
    argsrepr: argumentsRepr(delivery.payload),
    kwargsrepr: '{}',
    origin: celeryOrigin,
    ignore_result: false,
    replaced_task_nesting: 0,
    stamped_headers: null,
    stamps: {},
  };
  // The payload is already JSON: splice it in rather than parse and re-serialise it.
  const body = `[[${delivery.payload}],{},{"callbacks":null,"errbacks":null,"chain":null,"chord":null}]`;
  return { routingKey, body: Buffer.from(body, 'utf8'), properties };
}

/**
 * What amqplib's `Channel.publish` hands its encoder (`Args.publish` in its lib/api_args.js): the basic.publish
 * method's fields and the message's properties in one object. Built here with the headers as the object's own
 * fields, where amqplib wraps them in `Object.create(headers)`, whose inherited keys its table encoder then walks
 * in V8's slow path: the same bytes on the wire, about 5 us less per message.
 */
export interface AmqpPublishFields {
  readonly exchange: string;
  readonly routingKey: string;
  readonly mandatory: boolean;
  readonly immediate: boolean;
  readonly ticket: undefined;
  readonly contentType: string | undefined;
  readonly contentEncoding: string | undefined;
  readonly headers: Record<string, unknown>;
  readonly deliveryMode: number | undefined;
  readonly priority: number | undefined;
  readonly correlationId: string | undefined;
  readonly replyTo: string | undefined;
  readonly expiration: string | undefined;
  readonly messageId: string | undefined;
  readonly timestamp: number | undefined;
  readonly type: string | undefined;
  readonly userId: string | undefined;
  readonly appId: string | undefined;
  readonly clusterId: undefined;
}

/** `Args.publish(exchange, message.routingKey, message.properties)` for the properties {@link amqpMessage} sets. */
export function amqpPublishFields(exchange: string, message: AmqpMessage): AmqpPublishFields {
  const properties = message.properties;
  return {
    exchange,
    routingKey: message.routingKey,
    mandatory: false,
    immediate: false,
    ticket: undefined,
    contentType: properties.contentType,
    contentEncoding: properties.contentEncoding,
    headers: (properties.headers as Record<string, unknown> | undefined) ?? {},
    deliveryMode: typeof properties.deliveryMode === 'number' ? properties.deliveryMode : undefined,
    priority: properties.priority,
    correlationId: properties.correlationId,
    replyTo: properties.replyTo,
    expiration: undefined,
    messageId: properties.messageId,
    timestamp: properties.timestamp,
    type: properties.type,
    userId: undefined,
    appId: undefined,
    clusterId: undefined,
  };
}

/** The two steps of amqplib's `ConfirmChannel.publish` (lib/channel_model.js), when this amqplib has them. */
interface ConfirmChannelInternals {
  sendMessage(fields: AmqpPublishFields, properties: AmqpPublishFields, content: Buffer): boolean;
  pushConfirmCallback(callback: (error: unknown) => void): void;
}

function internalsOf(channel: ConfirmChannel): ConfirmChannelInternals | undefined {
  const candidate = channel as unknown as Partial<ConfirmChannelInternals>;
  return typeof candidate.sendMessage === 'function' && typeof candidate.pushConfirmCallback === 'function'
    ? (candidate as ConfirmChannelInternals)
    : undefined;
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === undefined ? error.message : `${error.message} (${code})`;
  }
  return String(error);
}

/**
 * `--hooks-amqp-url`: publishes every event to an exchange with publisher confirms. A delivery counts only
 * once the broker confirmed it; a broker that is down or refuses the message is `unreachable`, for the
 * outbox to retry. Declarations (exchange, queues, bindings) run on every new connection, so they also
 * happen when the broker comes back after an outage.
 */
export class AmqpHookTransport implements HookTransport {
  readonly config: AmqpHooksConfig;
  readonly #pool: AmqpChannelPool;
  readonly #name: string;
  /** What to cancel when a delivery's signal aborts. */
  readonly #aborts = new AbortWatch();
  /** Each channel's publishes in flight, for the channel's whole life (see `#laneOf`). */
  readonly #lanes = new WeakMap<PooledChannel, Lane>();
  /** The channels taken from the pool that take more publishes, in the order they were taken. */
  readonly #publishing: Lane[] = [];
  /** The payload says all a consumer learns of the request: no request header is read. */
  readonly requestHeaders: readonly string[] = [];
  /** Fails the publishes whose confirm did not come in time (one timer for all, not one per publish). */
  readonly #late: DeadlineQueue;

  constructor(config: AmqpHooksConfig) {
    this.config = config;
    this.#name = `amqp:${redactedUrl(config.url)}#${config.exchange}`;
    this.#late = new DeadlineQueue(config.publishTimeoutMs);
    this.#pool = new AmqpChannelPool({
      url: config.url,
      connectionPoolSize: config.connectionPoolSize,
      channelPoolSize: config.channelPoolSize,
      idleConnectionTimeoutMs: config.idleConnectionTimeoutMs,
      idleChannelTimeoutMs: config.idleChannelsTimeoutMs,
      connectTimeoutMs: config.publishTimeoutMs,
      prepare: (channel) => this.#declare(channel),
    });
  }

  describe(hook: string): string {
    return `${this.#name}/${amqpRoutingKey(this.config, hook)}`;
  }

  async deliver(delivery: HookDelivery): Promise<DeliveryResult> {
    if (delivery.signal.aborted) return { kind: 'aborted' };
    let lane = this.#laneWithRoom();
    if (lane === undefined) {
      let pooled = this.#pool.takeIdle();
      try {
        pooled ??= await this.#acquireUnlessAborted(delivery.signal);
        if (pooled === undefined) return { kind: 'aborted' };
      } catch (error) {
        if (delivery.signal.aborted) return { kind: 'aborted' };
        return { kind: 'unreachable', detail: `AMQP: ${errorText(error)}` };
      }
      lane = this.#laneOf(pooled);
      this.#publishing.push(lane);
    }
    lane.inFlight += 1;
    const message = amqpMessage(this.config, delivery);
    try {
      await this.#publish(lane, message, delivery.signal);
      this.#leave(lane);
      return { kind: 'delivered' };
    } catch (error) {
      // The channel may be broken (a confirm that never came): no publish goes on it any more.
      this.#retire(lane);
      this.#leave(lane);
      if (error instanceof PublishTimeout)
        return { kind: 'timed_out', timeoutMs: this.config.publishTimeoutMs };
      if (delivery.signal.aborted) return { kind: 'aborted' };
      return { kind: 'unreachable', detail: `AMQP: ${errorText(error)}` };
    }
  }

  /**
   * A channel already taken that has room for one more publish. Publishes share a confirm channel rather than
   * take one each: the broker then confirms several with one `basic.ack` (multiple), and fewer channels mean
   * fewer frames, streams and wake-ups on both sides (RabbitMQ spent about a quarter less CPU per message, and
   * Wharf some less, than with one channel per publish). A channel's publishes are confirmed in order.
   */
  #laneWithRoom(): Lane | undefined {
    for (const lane of this.#publishing) {
      if (lane.inFlight < publishesPerChannel && lane.pooled.open && lane.pooled.connection.open) return lane;
    }
    return undefined;
  }

  /** The lane of a channel, made on its first use, with the listener that fails its publishes when it closes. */
  #laneOf(pooled: PooledChannel): Lane {
    let lane = this.#lanes.get(pooled);
    if (lane === undefined) {
      const created: Lane = { pooled, inFlight: 0, unconfirmed: new Set(), taken: true };
      lane = created;
      this.#lanes.set(pooled, created);
      pooled.channel.on('close', () => {
        const error = new Error('channel closed before the broker confirmed');
        for (const settle of [...created.unconfirmed]) settle(error);
      });
    }
    lane.taken = true;
    return lane;
  }

  /** A publish on `lane` is over: the last one gives the channel back to the pool. */
  #leave(lane: Lane): void {
    lane.inFlight -= 1;
    if (lane.inFlight > 0 || !lane.taken) return;
    lane.taken = false;
    this.#forget(lane);
    this.#pool.release(lane.pooled);
  }

  /** Takes no more publishes on `lane`'s channel and closes it (the ones in flight on it then fail). */
  #retire(lane: Lane): void {
    if (!this.#forget(lane)) return;
    this.#pool.discard(lane.pooled);
  }

  #forget(lane: Lane): boolean {
    const at = this.#publishing.indexOf(lane);
    if (at === -1) return false;
    this.#publishing.splice(at, 1);
    return true;
  }

  /**
   * A channel, or undefined when the engine closes first (a connection attempt to an unresponsive broker can take
   * the whole publish timeout; shutdown should not wait for it). A channel that arrives late goes back to the pool.
   */
  #acquireUnlessAborted(signal: AbortSignal): Promise<PooledChannel | undefined> {
    const acquiring = this.#pool.acquire();
    return new Promise<PooledChannel | undefined>((resolve, reject) => {
      const stopWatching = this.#aborts.on(signal, () => {
        resolve(undefined);
        acquiring.then((late) => this.#pool.release(late)).catch(() => {});
      });
      acquiring.then(
        (channel) => {
          stopWatching();
          if (signal.aborted) return;
          resolve(channel);
        },
        (error: unknown) => {
          stopWatching();
          reject(error);
        },
      );
    });
  }

  async load(): Promise<void> {
    await import('amqplib');
  }

  /** Connects and declares the exchange and queues now, as rustus does at startup. */
  async open(): Promise<void> {
    this.#pool.release(await this.#pool.acquire());
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  /** See {@link AmqpChannelPool.keepConnections}: a replaced hook's connections close once no publish uses them. */
  keepConnections(keep: boolean): void {
    this.#pool.keepConnections(keep);
  }

  #publish(lane: Lane, message: AmqpMessage, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error: Error | undefined): void => {
        if (settled) return;
        settled = true;
        stopWatching();
        this.#late.delete(late);
        lane.unconfirmed.delete(settle);
        if (error === undefined) resolve();
        else reject(error);
      };
      const late = (): void => settle(new PublishTimeout());
      this.#late.add(late);
      const stopWatching = this.#aborts.on(signal, () => settle(new Error('aborted')));
      lane.unconfirmed.add(settle);
      this.#pool.batchWrites(lane.pooled);
      const confirmed = (error: unknown): void =>
        settle(error ? new Error(`broker refused the message: ${errorText(error)}`) : undefined);
      try {
        const channel = lane.pooled.channel;
        const internals = internalsOf(channel);
        if (internals === undefined) {
          channel.publish(
            this.config.exchange,
            message.routingKey,
            message.body,
            message.properties,
            confirmed,
          );
        } else {
          const fields = amqpPublishFields(this.config.exchange, message);
          internals.sendMessage(fields, fields, message.body);
          internals.pushConfirmCallback(confirmed);
        }
      } catch (error) {
        settle(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  async #declare(channel: ConfirmChannel): Promise<void> {
    const config = this.config;
    // The default exchange '' exists always and may not be declared.
    if (config.declareExchange && config.exchange !== '') {
      await channel.assertExchange(config.exchange, config.exchangeKind, {
        durable: config.durableExchange,
        autoDelete: config.autoDelete,
      });
    }
    if (!config.declareQueues) return;
    for (const queue of amqpQueueNames(config)) {
      await channel.assertQueue(queue, { durable: config.durableQueues, autoDelete: config.autoDelete });
      if (config.exchange !== '') await channel.bindQueue(queue, config.exchange, queue);
    }
  }
}

/** How many publishes one channel carries at once before another channel is taken from the pool. */
const publishesPerChannel = 64;

/** A pooled channel and the publishes it carries. */
interface Lane {
  readonly pooled: PooledChannel;
  /** Publishes on it not yet over (confirmed, refused or given up). */
  inFlight: number;
  /** What fails each unconfirmed publish when the channel closes. */
  readonly unconfirmed: Set<(error: Error | undefined) => void>;
  /** Taken from the pool (given back when its last publish is over). */
  taken: boolean;
}

class PublishTimeout extends Error {
  constructor() {
    super('the broker did not confirm the message in time');
    this.name = 'PublishTimeout';
  }
}
