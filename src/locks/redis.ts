import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { guardBackendCall } from '../backends/backend.ts';
import { type RedisBackend, RedisScript } from '../backends/redis.ts';
import { DistributedLocker, type Lease, type LeaseBackend, type LeaseEvents } from './distributed.ts';

/** SET NX PX: -10 when taken, else the time left on the holder's lease (-2 when it vanished in between). */
const takeScript = new RedisScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return -10 end
return redis.call('PTTL', KEYS[1])
`);
const renewScript = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);
/** Deletes the lease only if it is still ours, and announces it in the same round trip. */
const releaseScript = new RedisScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0
`);

export interface RedisLockerOptions {
  /** How long a lease lives without renewal: a crashed instance's locks free themselves after it. */
  readonly ttlMs: number;
  readonly keyPrefix?: string;
}

const releasedMessage = 'released';
const requestMessage = 'release-request';

/**
 * Leases as Redis keys `<prefix>lock:<id>` = a random token, taken with SET NX PX and renewed by the
 * holder every third of the TTL while it holds them. Release and release requests travel on one pub/sub
 * channel that every instance listens to.
 */
class RedisLeases implements LeaseBackend {
  readonly #backend: RedisBackend;
  readonly #ttlMs: number;
  readonly #prefix: string;
  readonly #channel: string;
  #subscriber: Redis | undefined;
  #events: LeaseEvents | undefined;

  constructor(backend: RedisBackend, options: RedisLockerOptions) {
    this.#backend = backend;
    this.#ttlMs = options.ttlMs;
    this.#prefix = `${options.keyPrefix ?? backend.keyPrefix}lock:`;
    this.#channel = `${options.keyPrefix ?? backend.keyPrefix}locks`;
  }

  async start(events: LeaseEvents): Promise<void> {
    const subscriber = await this.#backend.dedicated();
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.#channel) return;
      const newline = message.indexOf('\n');
      const kind = message.slice(0, newline);
      const key = message.slice(newline + 1);
      if (kind === releasedMessage) events.released(key);
      else if (kind === requestMessage) events.releaseRequested(key);
    });
    try {
      await guardBackendCall(this.#backend, () => subscriber.subscribe(this.#channel));
    } catch (error) {
      subscriber.disconnect();
      throw error;
    }
    this.#subscriber = subscriber;
    this.#events = events;
  }

  async tryTake(key: string): Promise<{ lease: Lease } | { retryInMs: number }> {
    const token = randomUUID();
    const redisKey = this.#prefix + key;
    const client = await this.#backend.run(async (client) => client);
    const result = await this.#backend
      .run(async () => Number(await takeScript.run(client, [redisKey], [token, this.#ttlMs])))
      .catch((error: unknown) => {
        // A take that timed out may still run when a hung Redis wakes up, leaving a lease nobody holds for a
        // whole TTL. Queued behind it on the same connection, this release frees it as soon as it is taken.
        releaseScript
          .run(client, [redisKey], [token, this.#channel, `${releasedMessage}\n${key}`])
          .catch(() => undefined);
        throw error;
      });
    if (result !== -10) return { retryInMs: result > 0 ? result + 5 : 0 };
    return { lease: this.#lease(client, key, redisKey, token) };
  }

  #lease(client: Redis, key: string, redisKey: string, token: string): Lease {
    let lost = false;
    const renewal = setInterval(
      () => {
        renewScript
          .run(client, [redisKey], [token, this.#ttlMs])
          .then((renewed) => {
            if (Number(renewed) !== 1 && !lost) {
              lost = true;
              clearInterval(renewal);
              this.#events?.lost(key);
            }
          })
          // Redis unreachable: try again next round; if it stays away past the TTL, the lease is gone.
          .catch(() => undefined);
      },
      Math.max(50, Math.floor(this.#ttlMs / 3)),
    );
    renewal.unref();
    return {
      release: async () => {
        clearInterval(renewal);
        await releaseScript.run(client, [redisKey], [token, this.#channel, `${releasedMessage}\n${key}`]);
      },
    };
  }

  async requestRelease(key: string): Promise<void> {
    await this.#backend.run((client) => client.publish(this.#channel, `${requestMessage}\n${key}`));
  }

  async close(): Promise<void> {
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) subscriber.disconnect();
  }
}

/** The per-upload lock shared by every instance using one Redis. */
export class RedisLocker extends DistributedLocker {
  constructor(backend: RedisBackend, options: RedisLockerOptions) {
    super(new RedisLeases(backend, options));
  }
}
