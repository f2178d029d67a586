import type { PostgresBackend } from '../backends/postgres.ts';
import { isValidUploadId } from './ids.ts';
import { InfoConflictError, type InfoStore } from './info-store.ts';
import type { UploadRecord } from './upload-record.ts';

const pageSize = 500;

/**
 * Upload records in PostgreSQL (db-info-storage): one row per upload in `wharf_uploads`, created by the
 * schema migrations. Compare-and-set is a conditional INSERT or UPDATE on the version column, so the
 * database decides which of two writers wins.
 */
export class PostgresInfoStore implements InfoStore {
  readonly #backend: PostgresBackend;

  constructor(backend: PostgresBackend) {
    this.#backend = backend;
  }

  async prepare(): Promise<void> {
    await this.#backend.pool();
  }

  #check(id: string): string {
    if (!isValidUploadId(id)) throw new RangeError(`invalid upload id: ${JSON.stringify(id)}`);
    return id;
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    const checked = this.#check(id);
    const { rows } = await this.#backend.run((pool) =>
      pool.query<{ version: string; record: UploadRecord }>(
        'SELECT version, record FROM wharf_uploads WHERE id = $1',
        [checked],
      ),
    );
    const row = rows[0];
    return row ? { ...row.record, version: Number(row.version) } : undefined;
  }

  async put(record: UploadRecord, expectedVersion: number | null): Promise<void> {
    const id = this.#check(record.id);
    const version = (expectedVersion ?? 0) + 1;
    const stored = JSON.stringify({ ...record, version });
    const result = await this.#backend.run((pool) =>
      expectedVersion === null
        ? pool.query(
            'INSERT INTO wharf_uploads (id, version, record) VALUES ($1, 1, $2) ON CONFLICT (id) DO NOTHING',
            [id, stored],
          )
        : pool.query(
            'UPDATE wharf_uploads SET version = $3, record = $4, updated_at = now() WHERE id = $1 AND version = $2',
            [id, expectedVersion, version, stored],
          ),
    );
    if (result.rowCount !== 1) throw new InfoConflictError(record.id);
    record.version = version;
  }

  async remove(id: string): Promise<void> {
    const checked = this.#check(id);
    await this.#backend.run((pool) => pool.query('DELETE FROM wharf_uploads WHERE id = $1', [checked]));
  }

  async *list(): AsyncIterable<UploadRecord> {
    let after = '';
    for (;;) {
      const from = after;
      const { rows } = await this.#backend.run((pool) =>
        pool.query<{ id: string; version: string; record: UploadRecord }>(
          'SELECT id, version, record FROM wharf_uploads WHERE id > $1 ORDER BY id LIMIT $2',
          [from, pageSize],
        ),
      );
      for (const row of rows) yield { ...row.record, version: Number(row.version) };
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1]!.id;
    }
  }
}
