import type { RedisBackend } from '../../backends/redis.ts';
import {
  BatchWriter,
  type EventQuery,
  type EventSummary,
  matches,
  queryLimit,
  type RetentionSettings,
  type RunHistory,
  replacedKey,
  runKey,
  summarise,
} from './run-history.ts';
import type { RunRecord } from './run-log.ts';

/*
 * Layout under `<prefix>history:`: `events` (sorted set of event ids by time), `upload:<id>` (the same, per
 * upload) and `event:<eventId>` (hash: `<target> <attempt>` -> the run's JSON). Every key expires after the
 * maximum age; the oldest events beyond the limit are removed by the instance that writes.
 */

export interface RedisRunHistoryOptions extends RetentionSettings {
  readonly keyPrefix?: string;
  readonly onError: (error: unknown, dropped: number) => void;
  readonly now?: () => number;
}

/** Event ids read per round trip while looking for matches. */
const page = 200;
/** How often retention runs (it also runs on the first write). */
const pruneIntervalMs = 10_000;

/** Run history in Redis, shared by every instance on that server. */
export class RedisRunHistory implements RunHistory {
  readonly description = 'redis';
  readonly #backend: RedisBackend;
  readonly #prefix: string;
  readonly #retention: RetentionSettings;
  readonly #writer: BatchWriter;
  readonly #now: () => number;
  #prunedAt = 0;

  constructor(backend: RedisBackend, options: RedisRunHistoryOptions) {
    this.#backend = backend;
    this.#prefix = `${options.keyPrefix ?? backend.keyPrefix}history:`;
    this.#retention = { limit: options.limit, maxAgeMs: options.maxAgeMs };
    this.#now = options.now ?? Date.now;
    this.#writer = new BatchWriter({ write: (runs) => this.#write(runs), onError: options.onError });
  }

  async open(): Promise<void> {
    await this.#backend.client();
  }

  record(run: RunRecord): void {
    this.#writer.add(run);
  }

  async #write(runs: RunRecord[]): Promise<void> {
    const client = await this.#backend.client();
    const ttl = this.#retention.maxAgeMs;
    const batch = client.pipeline();
    for (const run of runs) {
      const eventKey = `${this.#prefix}event:${run.eventId}`;
      const uploadKey = `${this.#prefix}upload:${run.uploadId}`;
      // LT: an event's time is its earliest run (new members are added as usual).
      batch.zadd(`${this.#prefix}events`, 'LT', run.startedAt, run.eventId);
      batch.zadd(uploadKey, 'LT', run.startedAt, run.eventId);
      const replaced = replacedKey(run);
      if (replaced !== undefined) batch.hdel(eventKey, replaced);
      batch.hset(eventKey, runKey(run), JSON.stringify(run));
      batch.pexpire(eventKey, ttl);
      batch.pexpire(uploadKey, ttl);
    }
    const results = (await batch.exec()) ?? [];
    const failed = results.find(([error]) => error !== null);
    if (failed?.[0]) throw failed[0];
    if (this.#now() - this.#prunedAt >= pruneIntervalMs) await this.#prune();
  }

  async #prune(): Promise<void> {
    this.#prunedAt = this.#now();
    const client = await this.#backend.client();
    const events = `${this.#prefix}events`;
    await client.zremrangebyscore(events, '-inf', `(${this.#now() - this.#retention.maxAgeMs}`);
    const excess = (await client.zcard(events)) - this.#retention.limit;
    if (excess <= 0) return;
    const ids = await client.zrange(events, '0', String(excess - 1));
    const removal = client.pipeline();
    for (const id of ids) removal.del(`${this.#prefix}event:${id}`);
    removal.zremrangebyrank(events, 0, excess - 1);
    await removal.exec();
  }

  async #summaries(ids: readonly string[]): Promise<EventSummary[]> {
    if (ids.length === 0) return [];
    const client = await this.#backend.client();
    const reads = client.pipeline();
    for (const id of ids) reads.hvals(`${this.#prefix}event:${id}`);
    const results = (await reads.exec()) ?? [];
    const summaries: EventSummary[] = [];
    for (const [index, [error, values]] of results.entries()) {
      if (error !== null || !Array.isArray(values)) continue;
      const runs = (values as string[]).map((text) => JSON.parse(text) as RunRecord);
      const summary = summarise(ids[index] ?? '', runs);
      if (summary !== undefined) summaries.push(summary);
    }
    return summaries;
  }

  async events(query: EventQuery): Promise<EventSummary[]> {
    const client = await this.#backend.client();
    const limit = queryLimit(query);
    const key =
      query.uploadId === undefined ? `${this.#prefix}events` : `${this.#prefix}upload:${query.uploadId}`;
    const oldest = Math.max(query.since ?? 0, this.#now() - this.#retention.maxAgeMs);
    const found: EventSummary[] = [];
    for (let offset = 0; found.length < limit; offset += page) {
      const ids = await client.zrevrangebyscore(key, '+inf', oldest, 'LIMIT', offset, page);
      for (const summary of await this.#summaries(ids)) {
        if (found.length < limit && matches(summary, query)) found.push(summary);
      }
      if (ids.length < page) break;
    }
    return found;
  }

  async event(eventId: string): Promise<EventSummary | undefined> {
    return (await this.#summaries([eventId]))[0];
  }

  flush(): Promise<void> {
    return this.#writer.flush();
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
