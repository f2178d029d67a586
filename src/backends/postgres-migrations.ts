/**
 * The schema Wharf keeps in PostgreSQL, as ordered migrations. A migration is never edited once released:
 * a change is a new entry with the next version. Each applies inside the runner's transaction.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'upload records',
    sql: `
      CREATE TABLE wharf_uploads (
        id text PRIMARY KEY,
        version bigint NOT NULL,
        record jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

/** Any constant works; it only keeps two instances starting together from migrating at once. */
export const migrationLockKey = 0x77686172; // 'whar'
