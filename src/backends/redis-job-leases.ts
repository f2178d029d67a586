import { randomUUID } from 'node:crypto';
import type { JobLease, JobLeaseOptions, JobLeases } from './job-leases.ts';
import { heldLease } from './job-leases.ts';
import { type RedisBackend, RedisScript } from './redis.ts';

/** Milliseconds since the epoch on the Redis server's clock, so that instances' clocks never decide a holder. */
const serverNow = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

/**
 * KEYS: the job's hash. ARGV: tick, holder, ttl ms, keep ms. 1 when the tick is ours: no later or equal tick
 * was claimed, and the holder of the last one released it or stopped renewing.
 */
const claimScript = new RedisScript(`${serverNow}
local last = tonumber(redis.call('HGET', KEYS[1], 'tick') or '-1')
if last >= tonumber(ARGV[1]) then return 0 end
local holder = redis.call('HGET', KEYS[1], 'holder')
if holder and holder ~= '' and tonumber(redis.call('HGET', KEYS[1], 'until') or '0') > now then return 0 end
redis.call('HSET', KEYS[1], 'tick', ARGV[1], 'holder', ARGV[2], 'until', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`);
/** KEYS: the job's hash. ARGV: tick, holder, ttl ms, keep ms. 1 when the lease was still ours. */
const renewScript = new RedisScript(`${serverNow}
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[2] or redis.call('HGET', KEYS[1], 'tick') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'until', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`);
/** KEYS: the job's hash. ARGV: tick, holder. */
const releaseScript = new RedisScript(`
if redis.call('HGET', KEYS[1], 'holder') == ARGV[2] and redis.call('HGET', KEYS[1], 'tick') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'holder', '')
  return 1
end
return 0
`);

/** A job's last tick is remembered this long after its last run (longer than any clock skew between instances). */
const keepMs = 24 * 60 * 60 * 1000;

/** Job leases as one hash per job, `<prefix>job-lease:<job>` = { tick, holder, until }, changed by Lua scripts. */
export class RedisJobLeases implements JobLeases {
  readonly #backend: RedisBackend;
  readonly #options: JobLeaseOptions;
  readonly #prefix: string;
  /** This process, as a holder. */
  readonly #holder = randomUUID();

  constructor(backend: RedisBackend, options: JobLeaseOptions & { readonly keyPrefix?: string }) {
    this.#backend = backend;
    this.#options = options;
    this.#prefix = `${options.keyPrefix ?? backend.keyPrefix}job-lease:`;
  }

  async claim(job: string, tick: number): Promise<JobLease | undefined> {
    const client = await this.#backend.client();
    const key = this.#prefix + job;
    const ticked = String(tick);
    const ttl = this.#options.ttlMs;
    const won = Number(
      await claimScript.run(client, [key], [ticked, this.#holder, ttl, Math.max(keepMs, ttl)]),
    );
    if (won !== 1) return undefined;
    return heldLease(
      {
        renew: async () =>
          Number(await renewScript.run(client, [key], [ticked, this.#holder, ttl, Math.max(keepMs, ttl)])) ===
          1,
        release: async () => {
          await releaseScript.run(client, [key], [ticked, this.#holder]);
        },
      },
      job,
      this.#options,
    );
  }
}
