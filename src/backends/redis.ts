import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { requirePackage } from '../require-package.ts';
import {
  type Backend,
  BackendUnavailableError,
  type GuardedBackend,
  guardBackendCall,
  isNetworkError,
  redactDsn,
  withTimeout,
} from './backend.ts';

const checkTimeoutMs = 2_000;

/** Default of --backend-timeout, in milliseconds. */
export const defaultBackendTimeoutMs = 5_000;
/** Default of --redis-key-prefix. */
export const defaultRedisKeyPrefix = 'wharf:';

/** What ioredis says when Redis is not there or did not answer in time. */
const silenceMessages = new Set([
  'Command timed out',
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
  'connect ETIMEDOUT',
]);
/** Redis replies that mean "not now" (loading its data, busy with a script, a replica without its primary). */
const transientReply = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY)\b/;

export interface RedisBackendOptions {
  /** Prefix of every key Wharf writes (records, locks, outbox, run history): --redis-key-prefix. */
  readonly keyPrefix?: string;
  /** How long one command (or a connection attempt) may take before it fails: --backend-timeout. */
  readonly timeoutMs?: number;
}

/**
 * One Redis server shared by the redis info store and the redis locker. The client library is loaded
 * only when Redis is configured (file-only mode starts without it). Commands fail after a short retry
 * instead of queueing for a long outage, and after --backend-timeout when Redis hangs: a request answers 503
 * (423 on HEAD) and the tus client retries.
 */
export class RedisBackend implements Backend, GuardedBackend {
  readonly name = 'redis';
  readonly address: string;
  /** Prefix of every key Wharf writes here; stores build their keys on it. */
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  readonly #dsn: string;
  #connecting: Promise<Redis> | undefined;
  readonly #connections: Redis[] = [];

  constructor(dsn: string, options: RedisBackendOptions = {}) {
    this.#dsn = dsn;
    this.address = redactDsn(dsn);
    this.keyPrefix = options.keyPrefix ?? defaultRedisKeyPrefix;
    this.timeoutMs = options.timeoutMs ?? defaultBackendTimeoutMs;
  }

  isUnavailable(error: unknown): boolean {
    if (!(error instanceof Error)) return false;
    return (
      error instanceof BackendUnavailableError ||
      isNetworkError(error) ||
      error.name === 'MaxRetriesPerRequestError' ||
      silenceMessages.has(error.message) ||
      error.message.startsWith('Socket timeout') ||
      (error.name === 'ReplyError' && transientReply.test(error.message))
    );
  }

  /** Runs `work` with the shared connection; a silent or absent Redis becomes a BackendUnavailableError. */
  run<T>(work: (client: Redis) => Promise<T>): Promise<T> {
    return guardBackendCall(this, async () => work(await this.client()));
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
    const { Redis: RedisClient } = requirePackage('ioredis') as typeof import('ioredis');
    const client = new RedisClient(this.#dsn, {
      maxRetriesPerRequest: 2,
      connectTimeout: this.timeoutMs,
      // A hung Redis (connection open, no answer) fails each command after this instead of holding it.
      commandTimeout: this.timeoutMs,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 1_000),
      lazyConnect: true,
    });
    // Errors surface on commands; the client reconnects by itself. An unhandled 'error' would crash.
    client.on('error', () => undefined);
    try {
      await withTimeout(client.connect(), this.timeoutMs, 'connect ETIMEDOUT');
    } catch (error) {
      client.disconnect();
      throw new BackendUnavailableError(this.name, this.address, error);
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
