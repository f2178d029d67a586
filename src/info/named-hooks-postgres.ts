import type { PostgresBackend } from '../backends/postgres.ts';
import type { NamedHooksStore, StoredNamedHooks } from './named-hooks-store.ts';

/** The admin API's named hooks in table `wharf_named_hooks`, one row (id 1). */
export class PostgresNamedHooksStore implements NamedHooksStore {
  readonly shared = true;
  readonly #backend: PostgresBackend;

  constructor(backend: PostgresBackend) {
    this.#backend = backend;
  }

  version(): Promise<number> {
    return this.#backend.run(async (pool) => {
      const { rows } = await pool.query<{ version: string }>(
        'SELECT version FROM wharf_named_hooks WHERE id = 1',
      );
      return Number(rows[0]?.version ?? 0);
    });
  }

  read(): Promise<StoredNamedHooks> {
    return this.#backend.run(async (pool) => {
      const { rows } = await pool.query<{ version: string; document: unknown }>(
        'SELECT version, document FROM wharf_named_hooks WHERE id = 1',
      );
      const row = rows[0];
      return row === undefined
        ? { version: 0, document: undefined }
        : { version: Number(row.version), document: row.document };
    });
  }

  write(document: unknown, expected: number): Promise<boolean> {
    return this.#backend.run(async (pool) => {
      const text = JSON.stringify(document);
      const result =
        expected === 0
          ? await pool.query(
              'INSERT INTO wharf_named_hooks (id, version, document) VALUES (1, 1, $1::jsonb) ON CONFLICT (id) DO NOTHING',
              [text],
            )
          : await pool.query(
              'UPDATE wharf_named_hooks SET version = version + 1, document = $1::jsonb, updated_at = now() WHERE id = 1 AND version = $2',
              [text, expected],
            );
      return result.rowCount === 1;
    });
  }
}
