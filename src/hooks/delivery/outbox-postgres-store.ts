import { randomUUID } from 'node:crypto';
import type { PostgresBackend } from '../../backends/postgres.ts';
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

/** How long an upload's event counter outlives its last event (then a later event would count from 1 again). */
const sequenceTtlDays = 30;

/** Claim rounds between two clean-ups of lapsed issue marks and forgotten counters. */
const cleanEvery = 30;

export interface PostgresOutboxStoreOptions {
  /** How long a claim outlives its last renewal: an instance silent that long is taken for dead. */
  readonly leaseMs: number;
  /** Entries taken over per claim round (default 1000). */
  readonly claimBatch?: number;
}

/**
 * The outbox in PostgreSQL (table `wharf_hook_outbox`, created by the schema migrations), shared by every
 * instance on that database. Each row is claimed by an owner until `lease_until`; the owner pushes the lease on
 * while it lives, and another instance takes expired rows over with `FOR UPDATE SKIP LOCKED`, so two instances
 * never take the same row in one round. Dead letters move to `wharf_hook_dead_letters`, owned by nobody.
 *
 * Each upload's events are counted in `wharf_hook_upload_sequences` (one row per upload, its update locking the
 * row, so two instances never get the same number); a number handed out is marked in
 * `wharf_hook_sequences_issued` until its event is in the outbox, and an outbox row carries its lane (target
 * and upload) and number, so any instance can see whether an earlier event of the upload is owed.
 */
export class PostgresOutboxStore implements OutboxStore, SharedOrder {
  readonly description = 'postgres';
  readonly order: SharedOrder = this;
  #claims = 0;
  readonly claimIntervalMs: number;
  readonly #backend: PostgresBackend;
  readonly #leaseMs: number;
  readonly #batch: number;
  readonly #owner = randomUUID();
  /** Appends run one after the other (the pool would otherwise reorder them), so seq follows `append` calls. */
  #appending: Promise<unknown> = Promise.resolve();

  constructor(backend: PostgresBackend, options: PostgresOutboxStoreOptions) {
    this.#backend = backend;
    this.#leaseMs = options.leaseMs;
    this.#batch = options.claimBatch ?? 1000;
    this.claimIntervalMs = Math.max(50, Math.floor(options.leaseMs / 3));
  }

  async open(targets: readonly string[]): Promise<OwedEntry[]> {
    return this.claim(targets);
  }

  append(entry: StoredEntry, limit: number): Promise<OwedEntry | undefined> {
    const run = this.#appending.then(async () => {
      const pool = await this.#backend.pool();
      const { rows } = await pool.query<{ seq: string }>(
        `INSERT INTO wharf_hook_outbox (entry_key, target, entry, owner, lease_until, lane, lane_seq)
         SELECT $1, $2, $3, $4, now() + $5 * interval '1 millisecond', $7, $8
         WHERE (SELECT count(*) FROM wharf_hook_outbox) < $6
         ON CONFLICT (entry_key) DO NOTHING
         RETURNING seq`,
        [
          entryKeyOf(entry),
          entry.target,
          JSON.stringify(entry),
          this.#owner,
          this.#leaseMs,
          limit,
          entry.delivery.sequence === undefined ? null : laneKeyOf(entry),
          entry.delivery.sequence ?? null,
        ],
      );
      const row = rows[0];
      return row === undefined ? undefined : { ...entry, seq: Number(row.seq) };
    });
    this.#appending = run.catch(() => undefined);
    return run;
  }

  async remove(entry: StoredEntry): Promise<void> {
    const pool = await this.#backend.pool();
    await pool.query('DELETE FROM wharf_hook_outbox WHERE entry_key = $1', [entryKeyOf(entry)]);
  }

  async nextSequence(uploadId: string): Promise<number> {
    const pool = await this.#backend.pool();
    const { rows } = await pool.query<{ last: string }>(
      `WITH counted AS (
         INSERT INTO wharf_hook_upload_sequences AS s (upload_id, last) VALUES ($1, 1)
         ON CONFLICT (upload_id) DO UPDATE SET last = s.last + 1, touched_at = now()
         RETURNING last
       )
       INSERT INTO wharf_hook_sequences_issued (upload_id, seq, until)
       SELECT $1, last, now() + $2 * interval '1 millisecond' FROM counted
       RETURNING seq AS last`,
      [uploadId, this.#leaseMs],
    );
    const row = rows[0];
    if (row === undefined) throw new Error('the upload sequence was not counted');
    return Number(row.last);
  }

  async settleSequence(uploadId: string, sequence: number): Promise<void> {
    const pool = await this.#backend.pool();
    await pool.query('DELETE FROM wharf_hook_sequences_issued WHERE upload_id = $1 AND seq = $2', [
      uploadId,
      sequence,
    ]);
  }

  async isNext(entry: StoredEntry): Promise<boolean> {
    const sequence = entry.delivery.sequence;
    if (sequence === undefined) return true;
    const pool = await this.#backend.pool();
    const { rows } = await pool.query<{ waiting: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM wharf_hook_outbox WHERE lane = $1 AND lane_seq < $3)
           OR EXISTS (SELECT 1 FROM wharf_hook_sequences_issued
                      WHERE upload_id = $2 AND seq < $3 AND until > now()) AS waiting`,
      [laneKeyOf(entry), entry.delivery.uploadId, sequence],
    );
    return rows[0]?.waiting === false;
  }

  async markDead(entry: StoredEntry, note: DeathNote, deadLimit: number): Promise<DroppedDeadLetter[]> {
    const pool = await this.#backend.pool();
    const dead: DeadEntry = { ...entry, dead: note };
    await pool.query(
      `WITH gone AS (DELETE FROM wharf_hook_outbox WHERE entry_key = $1)
       INSERT INTO wharf_hook_dead_letters (entry_key, target, entry, dead_at)
       VALUES ($1, $2, $3, to_timestamp($4 / 1000.0))
       ON CONFLICT (entry_key) DO UPDATE SET entry = EXCLUDED.entry, dead_at = EXCLUDED.dead_at`,
      [entryKeyOf(entry), entry.target, JSON.stringify(dead), note.deadAt],
    );
    // The oldest beyond the limit go (by the dead_at index); instances trimming at once may leave a few over.
    const { rows } = await pool.query<{ entry_key: string }>(
      `DELETE FROM wharf_hook_dead_letters WHERE entry_key IN (
         SELECT entry_key FROM wharf_hook_dead_letters ORDER BY dead_at, entry_key
         LIMIT GREATEST((SELECT count(*) FROM wharf_hook_dead_letters) - $1, 0))
       RETURNING entry_key`,
      [deadLimit],
    );
    return rows.map((row) => droppedOf(row.entry_key));
  }

  async deadLetters(): Promise<DeadEntry[]> {
    const pool = await this.#backend.pool();
    const { rows } = await pool.query<{ entry: DeadEntry }>(
      // The order the limit drops them in; dead_at alone leaves ties to an unstable sort.
      'SELECT entry FROM wharf_hook_dead_letters ORDER BY dead_at, entry_key',
    );
    return rows.map((row) => row.entry);
  }

  async removeDead(target: string, eventId: string): Promise<boolean> {
    const pool = await this.#backend.pool();
    const { rowCount } = await pool.query('DELETE FROM wharf_hook_dead_letters WHERE entry_key = $1', [
      `${target} ${eventId}`,
    ]);
    return (rowCount ?? 0) > 0;
  }

  async claim(targets: readonly string[]): Promise<OwedEntry[]> {
    const pool = await this.#backend.pool();
    this.#claims += 1;
    if (this.#claims % cleanEvery === 1) {
      // Marks of instances that died between counting an event and storing it, and counters long unused.
      await pool.query('DELETE FROM wharf_hook_sequences_issued WHERE until < now()');
      await pool.query(
        `DELETE FROM wharf_hook_upload_sequences WHERE touched_at < now() - $1 * interval '1 day'`,
        [sequenceTtlDays],
      );
    }
    await pool.query(
      `UPDATE wharf_hook_outbox SET lease_until = now() + $2 * interval '1 millisecond' WHERE owner = $1`,
      [this.#owner, this.#leaseMs],
    );
    if (targets.length === 0) return [];
    const { rows } = await pool.query<{ seq: string; entry: StoredEntry }>(
      `WITH expired AS (
         SELECT seq FROM wharf_hook_outbox
         WHERE lease_until < now() AND owner <> $1 AND target = ANY($3)
         ORDER BY seq LIMIT $4
         FOR UPDATE SKIP LOCKED
       )
       UPDATE wharf_hook_outbox AS o
       SET owner = $1, lease_until = now() + $2 * interval '1 millisecond'
       FROM expired WHERE o.seq = expired.seq
       RETURNING o.seq, o.entry`,
      [this.#owner, this.#leaseMs, [...targets], this.#batch],
    );
    return rows.map((row) => ({ ...row.entry, seq: Number(row.seq) })).sort((a, b) => a.seq - b.seq);
  }

  async pending(): Promise<StoredEntry[]> {
    const pool = await this.#backend.pool();
    const { rows } = await pool.query<{ entry: StoredEntry }>(
      'SELECT entry FROM wharf_hook_outbox ORDER BY seq',
    );
    return rows.map((row) => row.entry);
  }

  /** Gives up the claims at once: the other instances take over what is still owed at their next round. */
  async close(): Promise<void> {
    await this.#appending;
    const pool = await this.#backend.pool();
    await pool.query(`UPDATE wharf_hook_outbox SET lease_until = '-infinity' WHERE owner = $1`, [
      this.#owner,
    ]);
  }
}
