import { hostname } from 'node:os';
import type { ConfirmChannel, Options } from 'amqplib';
import { uploadEventNames } from '../events.ts';
import { AbortWatch } from './abort-watch.ts';
import { AmqpChannelPool, type PooledChannel } from './amqp-pool.ts';
import { amqpCloudEventProperties } from './cloudevents-bindings.ts';
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
  /** The publish each channel waits on the broker's confirm for (see `#watchClose`). */
  readonly #unconfirmed = new Map<PooledChannel, (error: Error | undefined) => void>();
  readonly #watchedChannels = new WeakSet<PooledChannel>();
  /** The payload says all a consumer learns of the request: no request header is read. */
  readonly requestHeaders: readonly string[] = [];

  constructor(config: AmqpHooksConfig) {
    this.config = config;
    this.#name = `amqp:${redactedUrl(config.url)}#${config.exchange}`;
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
    let pooled = this.#pool.takeIdle();
    try {
      pooled ??= await this.#acquireUnlessAborted(delivery.signal);
      if (pooled === undefined) return { kind: 'aborted' };
    } catch (error) {
      if (delivery.signal.aborted) return { kind: 'aborted' };
      return { kind: 'unreachable', detail: `AMQP: ${errorText(error)}` };
    }
    const message = amqpMessage(this.config, delivery);
    try {
      await this.#publish(pooled, message, delivery.signal);
      this.#pool.release(pooled);
      return { kind: 'delivered' };
    } catch (error) {
      this.#pool.discard(pooled);
      this.#pool.release(pooled);
      if (error instanceof PublishTimeout)
        return { kind: 'timed_out', timeoutMs: this.config.publishTimeoutMs };
      if (delivery.signal.aborted) return { kind: 'aborted' };
      return { kind: 'unreachable', detail: `AMQP: ${errorText(error)}` };
    }
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

  /**
   * Fails the publish waiting on a channel when the channel closes. One listener per channel for its whole life
   * (a pooled channel carries one publish at a time), not one added and removed by every publish.
   */
  #watchClose(pooled: PooledChannel): void {
    if (this.#watchedChannels.has(pooled)) return;
    this.#watchedChannels.add(pooled);
    pooled.channel.on('close', () => {
      this.#unconfirmed.get(pooled)?.(new Error('channel closed before the broker confirmed'));
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

  #publish(pooled: PooledChannel, message: AmqpMessage, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stopWatching();
        if (this.#unconfirmed.get(pooled) === settle) this.#unconfirmed.delete(pooled);
        if (error === undefined) resolve();
        else reject(error);
      };
      const timer = setTimeout(() => settle(new PublishTimeout()), this.config.publishTimeoutMs);
      const stopWatching = this.#aborts.on(signal, () => settle(new Error('aborted')));
      this.#watchClose(pooled);
      this.#unconfirmed.set(pooled, settle);
      this.#pool.batchWrites(pooled);
      try {
        pooled.channel.publish(
          this.config.exchange,
          message.routingKey,
          message.body,
          message.properties,
          (error) => settle(error ? new Error(`broker refused the message: ${errorText(error)}`) : undefined),
        );
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

class PublishTimeout extends Error {
  constructor() {
    super('the broker did not confirm the message in time');
    this.name = 'PublishTimeout';
  }
}
