import { type RedisBackend, RedisScript } from '../backends/redis.ts';
import type { NamedHooksStore, StoredNamedHooks } from './named-hooks-store.ts';

/** Compare-and-set: writes version ARGV[1] + 1 when the stored version is ARGV[1]. */
const writeScript = new RedisScript(`
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', current + 1, 'document', ARGV[2])
return 1
`);

/** The admin API's named hooks in one hash, `<prefix>named-hooks` (fields `version` and `document`). */
export class RedisNamedHooksStore implements NamedHooksStore {
  readonly shared = true;
  readonly #backend: RedisBackend;
  readonly #key: string;

  constructor(backend: RedisBackend) {
    this.#backend = backend;
    this.#key = `${backend.keyPrefix}named-hooks`;
  }

  version(): Promise<number> {
    return this.#backend.run(async (client) => Number((await client.hget(this.#key, 'version')) ?? 0));
  }

  read(): Promise<StoredNamedHooks> {
    return this.#backend.run(async (client) => {
      const [version, document] = await client.hmget(this.#key, 'version', 'document');
      return {
        version: Number(version ?? 0),
        document: document === null || document === undefined ? undefined : JSON.parse(document),
      };
    });
  }

  write(document: unknown, expected: number): Promise<boolean> {
    return this.#backend.run(
      async (client) =>
        (await writeScript.run(client, [this.#key], [expected, JSON.stringify(document)])) === 1,
    );
  }
}
