import { randomUUID } from 'node:crypto';
import type { RedisBackend } from '../../backends/redis.ts';
import { RedisScript } from '../../backends/redis.ts';
import type { StoredEntry } from './outbox-journal.ts';
import {
  type DeadEntry,
  type DeathNote,
  type DroppedDeadLetter,
  droppedOf,
  entryKeyOf,
  laneKeyOf,
  type OutboxStore,
  type OwedEntry,
  type SharedOrder,
} from './outbox-store.ts';

/*
 * Layout under the prefix: `outbox:entries` (hash: entry key -> JSON), `outbox:seq` (counter giving the order),
 * `outbox:owners` (set of instances holding entries), `outbox:owned:<owner>` (sorted set of that instance's entry
 * keys by seq), `outbox:alive:<owner>` (the claim: a key with a TTL the owner renews) and `outbox:dead` (hash:
 * entry key -> JSON of a dead letter, owned by nobody, not counted against the limit) with `outbox:dead:order`
 * (sorted set of dead entry keys by death time, to drop the oldest beyond the dead-letter limit). The scripts build the
 * per-owner key names themselves, so this layout needs one Redis server (not Redis Cluster).
 *
 * The order of each upload's events: `outbox:sequence:<upload>` (the upload's event counter, kept
 * {@link sequenceTtlMs} after its last event), `outbox:issued:<upload>` (sorted set: numbers handed out whose
 * event is not yet in the outbox, by the time the mark lapses) and `outbox:lane:<target> <upload>` (sorted set:
 * the upload's owed entry keys for that target, by event number, whichever instance owns them).
 */

/** How long an upload's event counter outlives its last event (then a later event would count from 1 again). */
export const sequenceTtlMs = 30 * 86_400_000;

/**
 * KEYS: counter, issued. ARGV: counter TTL ms, mark lease ms. Counts the upload's event and marks the number
 * as on its way into the outbox until settled (or the lease lapses: its instance died). Returns the number.
 */
const nextSequenceScript = new RedisScript(`
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), n)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return n
`);

/**
 * KEYS: lane, issued. ARGV: sequence. 1 when no entry of the lane has a lower number and no lower number is
 * still on its way into the outbox (marks whose lease lapsed are dropped); else 0.
 */
const isNextScript = new RedisScript(`
if #redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1) > 0 then return 0 end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
for _, issued in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if tonumber(issued) < tonumber(ARGV[1]) then return 0 end
end
return 1
`);

/**
 * KEYS: entries, seq, owners, owned:me, lane. ARGV: entry key, JSON, limit, me, the upload's event number (''
 * for none). Returns the seq, or 0 when full.
 */
const appendScript = new RedisScript(`
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[4], seq, ARGV[1])
redis.call('SADD', KEYS[3], ARGV[4])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[5], ARGV[5], ARGV[1]) end
return seq
`);

/**
 * KEYS: entries, owners. ARGV: prefix, me, max, targets... Moves the entries of dead owners (no alive key) whose
 * target is one of `targets` to me; returns seq, JSON pairs.
 */
const claimScript = new RedisScript(`
local targets = {}
for i = 4, #ARGV do targets[ARGV[i]] = true end
local max = tonumber(ARGV[3])
local mine = ARGV[1] .. 'owned:' .. ARGV[2]
local out = {}
local taken = 0
for _, owner in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if owner ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'alive:' .. owner) == 0 then
    local theirs = ARGV[1] .. 'owned:' .. owner
    local members = redis.call('ZRANGE', theirs, 0, -1, 'WITHSCORES')
    for i = 1, #members, 2 do
      local key = members[i]
      if taken < max and targets[string.match(key, '^(.-) ')] then
        redis.call('ZREM', theirs, key)
        local entry = redis.call('HGET', KEYS[1], key)
        if entry then
          redis.call('ZADD', mine, members[i + 1], key)
          out[#out + 1] = members[i + 1]
          out[#out + 1] = entry
          taken = taken + 1
        end
      end
    end
    if redis.call('ZCARD', theirs) == 0 then redis.call('SREM', KEYS[2], owner) end
  end
end
if taken > 0 then redis.call('SADD', KEYS[2], ARGV[2]) end
return out
`);

/** KEYS: dead, dead order. ARGV: limit. Drops the oldest dead letters beyond the limit; returns their keys. */
const trimDeadScript = new RedisScript(`
local over = redis.call('HLEN', KEYS[1]) - tonumber(ARGV[1])
if over <= 0 then return {} end
local keys = redis.call('ZRANGE', KEYS[2], 0, over - 1)
for _, key in ipairs(keys) do
  redis.call('HDEL', KEYS[1], key)
  redis.call('ZREM', KEYS[2], key)
end
return keys
`);

export interface RedisOutboxStoreOptions {
  /** How long a claim outlives its last renewal: an instance silent that long is taken for dead. */
  readonly leaseMs: number;
  /** Prefix of every key (default: the backend's, `--redis-key-prefix`), shared with the info store. */
  readonly keyPrefix?: string;
  /** Entries taken over per claim round (default 1000). */
  readonly claimBatch?: number;
}

/** The outbox in Redis, shared by every instance on that server; see the layout above. */
export class RedisOutboxStore implements OutboxStore, SharedOrder {
  readonly description = 'redis';
  readonly order: SharedOrder = this;
  readonly claimIntervalMs: number;
  readonly #backend: RedisBackend;
  readonly #leaseMs: number;
  readonly #prefix: string;
  readonly #batch: number;
  readonly #owner = randomUUID();
  /** Appends go out one after the other, so the seq order is the order of `append` calls. */
  #appending: Promise<unknown> = Promise.resolve();

  constructor(backend: RedisBackend, options: RedisOutboxStoreOptions) {
    this.#backend = backend;
    this.#leaseMs = options.leaseMs;
    this.#prefix = `${options.keyPrefix ?? backend.keyPrefix}outbox:`;
    this.#batch = options.claimBatch ?? 1000;
    this.claimIntervalMs = Math.max(50, Math.floor(options.leaseMs / 3));
  }

  #key(name: string): string {
    return this.#prefix + name;
  }

  async open(targets: readonly string[]): Promise<OwedEntry[]> {
    return this.claim(targets);
  }

  append(entry: StoredEntry, limit: number): Promise<OwedEntry | undefined> {
    const run = this.#appending.then(async () => {
      const client = await this.#backend.client();
      await this.#renew();
      const seq = Number(
        await appendScript.run(
          client,
          [
            this.#key('entries'),
            this.#key('seq'),
            this.#key('owners'),
            this.#key(`owned:${this.#owner}`),
            this.#key(`lane:${laneKeyOf(entry)}`),
          ],
          [entryKeyOf(entry), JSON.stringify(entry), limit, this.#owner, entry.delivery.sequence ?? ''],
        ),
      );
      return seq === 0 ? undefined : { ...entry, seq };
    });
    this.#appending = run.catch(() => undefined);
    return run;
  }

  async remove(entry: StoredEntry): Promise<void> {
    const client = await this.#backend.client();
    const key = entryKeyOf(entry);
    await client
      .multi()
      .hdel(this.#key('entries'), key)
      .zrem(this.#key(`owned:${this.#owner}`), key)
      .zrem(this.#key(`lane:${laneKeyOf(entry)}`), key)
      .exec();
  }

  async nextSequence(uploadId: string): Promise<number> {
    const client = await this.#backend.client();
    return Number(
      await nextSequenceScript.run(
        client,
        [this.#key(`sequence:${uploadId}`), this.#key(`issued:${uploadId}`)],
        [sequenceTtlMs, this.#leaseMs],
      ),
    );
  }

  async settleSequence(uploadId: string, sequence: number): Promise<void> {
    const client = await this.#backend.client();
    await client.zrem(this.#key(`issued:${uploadId}`), String(sequence));
  }

  async isNext(entry: StoredEntry): Promise<boolean> {
    const sequence = entry.delivery.sequence;
    if (sequence === undefined) return true;
    const client = await this.#backend.client();
    const answer = await isNextScript.run(
      client,
      [this.#key(`lane:${laneKeyOf(entry)}`), this.#key(`issued:${entry.delivery.uploadId}`)],
      [sequence],
    );
    return Number(answer) === 1;
  }

  async markDead(entry: StoredEntry, note: DeathNote, deadLimit: number): Promise<DroppedDeadLetter[]> {
    const client = await this.#backend.client();
    const key = entryKeyOf(entry);
    const dead: DeadEntry = { ...entry, dead: note };
    await client
      .multi()
      .hdel(this.#key('entries'), key)
      .zrem(this.#key(`owned:${this.#owner}`), key)
      .zrem(this.#key(`lane:${laneKeyOf(entry)}`), key)
      .hset(this.#key('dead'), key, JSON.stringify(dead))
      .zadd(this.#key('dead:order'), note.deadAt, key)
      .exec();
    const dropped = (await trimDeadScript.run(
      client,
      [this.#key('dead'), this.#key('dead:order')],
      [deadLimit],
    )) as string[];
    return dropped.map(droppedOf);
  }

  async deadLetters(): Promise<DeadEntry[]> {
    const client = await this.#backend.client();
    const [[orderError, ordered], [hashError, texts]] = ((await client
      .multi()
      .zrange(this.#key('dead:order'), '0', '-1')
      .hgetall(this.#key('dead'))
      .exec()) ?? [
      [null, []],
      [null, {}],
    ]) as [[Error | null, string[]], [Error | null, Record<string, string>]];
    if (orderError !== null || hashError !== null) throw orderError ?? hashError;
    // In the order the limit drops them (death time, then key): the hash alone has no order. Dead letters an
    // older Wharf stored have no place in the order; they come first, being older than any that do.
    const listed = new Set(ordered);
    const keys = [...Object.keys(texts).filter((key) => !listed.has(key)), ...ordered];
    return keys.flatMap((key) => (texts[key] === undefined ? [] : [JSON.parse(texts[key]) as DeadEntry]));
  }

  async removeDead(target: string, eventId: string): Promise<boolean> {
    const client = await this.#backend.client();
    const key = `${target} ${eventId}`;
    const [removed] = (await client
      .multi()
      .hdel(this.#key('dead'), key)
      .zrem(this.#key('dead:order'), key)
      .exec()) ?? [[null, 0]];
    return removed?.[1] === 1;
  }

  async claim(targets: readonly string[]): Promise<OwedEntry[]> {
    const client = await this.#backend.client();
    await this.#renew(true);
    if (targets.length === 0) return [];
    const reply = (await claimScript.run(
      client,
      [this.#key('entries'), this.#key('owners')],
      [this.#prefix, this.#owner, this.#batch, ...targets],
    )) as string[];
    const owed: OwedEntry[] = [];
    for (let index = 0; index + 1 < reply.length; index += 2) {
      owed.push({ ...(JSON.parse(reply[index + 1] ?? '') as StoredEntry), seq: Number(reply[index]) });
    }
    return owed.sort((a, b) => a.seq - b.seq);
  }

  async pending(): Promise<StoredEntry[]> {
    const client = await this.#backend.client();
    const owners = await client.smembers(this.#key('owners'));
    const keyed: { key: string; seq: number }[] = [];
    for (const owner of owners) {
      const members = await client.zrange(this.#key(`owned:${owner}`), '0', '-1', 'WITHSCORES');
      for (let index = 0; index + 1 < members.length; index += 2) {
        keyed.push({ key: members[index] ?? '', seq: Number(members[index + 1]) });
      }
    }
    keyed.sort((a, b) => a.seq - b.seq);
    if (keyed.length === 0) return [];
    const texts = await client.hmget(this.#key('entries'), ...keyed.map((entry) => entry.key));
    return texts
      .filter((text): text is string => text !== null)
      .map((text) => JSON.parse(text) as StoredEntry);
  }

  /** Gives up the claim at once: the other instances take over what is still owed at their next round. */
  async close(): Promise<void> {
    await this.#appending;
    const client = await this.#backend.client();
    await client.del(this.#key(`alive:${this.#owner}`));
  }

  #renewedAt = 0;

  /** Keeps this instance's claim alive (at most once per claim interval unless forced). */
  async #renew(force = false): Promise<void> {
    const now = Date.now();
    if (!force && now - this.#renewedAt < this.claimIntervalMs) return;
    const client = await this.#backend.client();
    await client.set(this.#key(`alive:${this.#owner}`), '1', 'PX', this.#leaseMs);
    this.#renewedAt = now;
  }
}
