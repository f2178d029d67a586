import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { type Backend, redactDsn, withTimeout } from './backend.ts';

const connectTimeoutMs = 10_000;
const checkTimeoutMs = 2_000;

/**
 * One Redis server shared by the redis info store and the redis locker. The client library is loaded
 * only when Redis is configured (file-only mode starts without it). Commands fail after a short retry
 * instead of queueing for a long outage: a request answers 5xx and the tus client retries.
 */
export class RedisBackend implements Backend {
  readonly name = 'redis';
  readonly #dsn: string;
  #connecting: Promise<Redis> | undefined;
  readonly #connections: Redis[] = [];

  constructor(dsn: string) {
    this.#dsn = dsn;
  }

  /** The shared command connection, connected on first use. */
  client(): Promise<Redis> {
    if (!this.#connecting) {
      const connecting = this.#open();
      this.#connecting = connecting;
      // A failed first connection is retried on the next use instead of being remembered forever.
      connecting.catch(() => {
        if (this.#connecting === connecting) this.#connecting = undefined;
      });
    }
    return this.#connecting;
  }

  /** A new connection of its own (pub/sub needs one). */
  async dedicated(): Promise<Redis> {
    return this.#open();
  }

  async #open(): Promise<Redis> {
    const { Redis: RedisClient } = await import('ioredis');
    const client = new RedisClient(this.#dsn, {
      maxRetriesPerRequest: 2,
      connectTimeout: 5_000,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
      lazyConnect: true,
    });
    // Errors surface on commands; the client reconnects by itself. An unhandled 'error' would crash.
    client.on('error', () => undefined);
    try {
      await withTimeout(client.connect(), connectTimeoutMs, `cannot reach redis at ${redactDsn(this.#dsn)}`);
    } catch (error) {
      client.disconnect();
      throw new Error(`cannot reach redis at ${redactDsn(this.#dsn)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.#connections.push(client);
    return client;
  }

  async check(): Promise<void> {
    const client = await withTimeout(this.client(), checkTimeoutMs, 'redis: not connected');
    if (client.status !== 'ready') throw new Error(`redis: connection ${client.status}`);
    await withTimeout(client.ping(), checkTimeoutMs, 'redis: no answer to PING');
  }

  async close(): Promise<void> {
    const connections = this.#connections.splice(0);
    this.#connecting = undefined;
    await Promise.all(
      connections.map(async (client) => {
        if (client.status !== 'ready') {
          client.disconnect();
          return;
        }
        await withTimeout(client.quit(), checkTimeoutMs, 'redis: QUIT unanswered').catch(() =>
          client.disconnect(),
        );
      }),
    );
  }
}

/** A Lua script run by its SHA, loaded on first use and again after a server restart (NOSCRIPT). */
export class RedisScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(client: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await client.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.eval(this.#source, keys.length, ...keys, ...args);
    }
  }
}
