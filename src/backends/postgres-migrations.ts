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
  {
    version: 2,
    name: 'hook outbox',
    sql: `
      CREATE TABLE wharf_hook_outbox (
        seq bigserial PRIMARY KEY,
        entry_key text NOT NULL UNIQUE,
        target text NOT NULL,
        entry jsonb NOT NULL,
        owner text NOT NULL,
        lease_until timestamptz NOT NULL
      );
      CREATE INDEX wharf_hook_outbox_owner ON wharf_hook_outbox (owner);
      CREATE INDEX wharf_hook_outbox_lease ON wharf_hook_outbox (lease_until);
    `,
  },
  {
    version: 3,
    name: 'hook dead letters',
    sql: `
      CREATE TABLE wharf_hook_dead_letters (
        entry_key text PRIMARY KEY,
        target text NOT NULL,
        entry jsonb NOT NULL,
        dead_at timestamptz NOT NULL
      );
      CREATE INDEX wharf_hook_dead_letters_dead_at ON wharf_hook_dead_letters (dead_at);
      `,
  },
  {
    version: 4,
    name: 'hook run history',
    sql: `
      CREATE TABLE wharf_hook_events (
        event_id text PRIMARY KEY,
        event text NOT NULL,
        upload_id text NOT NULL,
        at bigint NOT NULL
      );
      CREATE INDEX wharf_hook_events_at ON wharf_hook_events (at DESC);
      CREATE INDEX wharf_hook_events_upload ON wharf_hook_events (upload_id, at DESC);
      CREATE TABLE wharf_hook_runs (
        event_id text NOT NULL REFERENCES wharf_hook_events (event_id) ON DELETE CASCADE,
        run_key text NOT NULL,
        record jsonb NOT NULL,
        PRIMARY KEY (event_id, run_key)
      );
    `,
  },
  {
    version: 5,
    name: 'hook event order per upload',
    sql: `
      ALTER TABLE wharf_hook_outbox ADD COLUMN lane text, ADD COLUMN lane_seq bigint;
      CREATE INDEX wharf_hook_outbox_lane ON wharf_hook_outbox (lane, lane_seq) WHERE lane IS NOT NULL;
      CREATE TABLE wharf_hook_upload_sequences (
        upload_id text PRIMARY KEY,
        last bigint NOT NULL,
        touched_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX wharf_hook_upload_sequences_touched ON wharf_hook_upload_sequences (touched_at);
      CREATE TABLE wharf_hook_sequences_issued (
        upload_id text NOT NULL,
        seq bigint NOT NULL,
        until timestamptz NOT NULL,
        PRIMARY KEY (upload_id, seq)
      );
    `,
  },
  {
    // Numbered apart from the migrations other changes of the same release add (gaps are fine: the runner
    // applies every version not yet recorded, in order).
    version: 17,
    name: 'job leases',
    sql: `
      CREATE TABLE wharf_job_leases (
        job text PRIMARY KEY,
        tick bigint NOT NULL,
        holder text,
        held_until timestamptz NOT NULL
      );
    `,
  },
  {
    // Numbered apart, like 17 (issue 19: named hooks changed through the admin API).
    version: 1902,
    name: 'named hooks of the admin API',
    sql: `
      CREATE TABLE wharf_named_hooks (
        id smallint PRIMARY KEY,
        version bigint NOT NULL,
        document jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

/**
 * Any constant works; with a hash of the schema's name as the second key, it keeps two instances starting together
 * on one schema from migrating it at once.
 */
export const migrationLockKey = 0x77686172; // 'whar'
