import type { RedisBackend } from '../backends/redis.ts';
import { RedisScript } from '../backends/redis.ts';
import { isValidUploadId } from './ids.ts';
import { InfoConflictError, type InfoStore } from './info-store.ts';
import type { UploadRecord } from './upload-record.ts';

/**
 * Compare-and-set in one round trip: the stored version must be the expected one ('' = must not exist),
 * then the record and its new version are written together and the TTL is slid, as rustus does on every
 * write with --redis-info-expiration.
 */
const putScript = new RedisScript(`
local current = redis.call('HGET', KEYS[1], 'version')
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'record', ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end
return 1
`);

export interface RedisInfoStoreOptions {
  /** Seconds a record lives after its last write; 0 = forever (--redis-info-expiration). */
  readonly expirationSeconds: number;
  /** Prefix of every key, so Wharf's records stay apart from other data in the same database. */
  readonly keyPrefix?: string;
}

/** Upload records in Redis: one hash per upload (`version`, `record` JSON) under `<prefix>info:<id>`. */
export class RedisInfoStore implements InfoStore {
  readonly #backend: RedisBackend;
  readonly #expiration: number;
  readonly #prefix: string;

  constructor(backend: RedisBackend, options: RedisInfoStoreOptions) {
    this.#backend = backend;
    this.#expiration = options.expirationSeconds;
    this.#prefix = `${options.keyPrefix ?? backend.keyPrefix}info:`;
  }

  async prepare(): Promise<void> {
    await this.#backend.client();
  }

  #key(id: string): string {
    if (!isValidUploadId(id)) throw new RangeError(`invalid upload id: ${JSON.stringify(id)}`);
    return this.#prefix + id;
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    const key = this.#key(id);
    const [version, text] = await this.#backend.run((client) => client.hmget(key, 'version', 'record'));
    if (!text || !version) return undefined;
    return { ...(JSON.parse(text) as UploadRecord), version: Number(version) };
  }

  async put(record: UploadRecord, expectedVersion: number | null): Promise<void> {
    const key = this.#key(record.id);
    const version = (expectedVersion ?? 0) + 1;
    const stored = JSON.stringify({ ...record, version });
    const written = await this.#backend.run((client) =>
      putScript.run(
        client,
        [key],
        [expectedVersion === null ? '' : String(expectedVersion), String(version), stored, this.#expiration],
      ),
    );
    if (written !== 1) throw new InfoConflictError(record.id);
    record.version = version;
  }

  async remove(id: string): Promise<void> {
    const key = this.#key(id);
    await this.#backend.run((client) => client.del(key));
  }

  async *list(): AsyncIterable<UploadRecord> {
    let cursor = '0';
    do {
      const [next, keys] = await this.#backend.run((client) =>
        client.scan(cursor, 'MATCH', `${this.#prefix}*`, 'COUNT', 500),
      );
      cursor = next;
      for (const key of keys) {
        const record = await this.get(key.slice(this.#prefix.length)).catch(() => undefined);
        if (record) yield record;
      }
    } while (cursor !== '0');
  }
}
