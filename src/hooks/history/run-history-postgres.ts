import type { PostgresBackend } from '../../backends/postgres.ts';
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

export interface PostgresRunHistoryOptions extends RetentionSettings {
  readonly onError: (error: unknown, dropped: number) => void;
  readonly now?: () => number;
}

const page = 200;
const pruneIntervalMs = 10_000;

/**
 * Run history in PostgreSQL (tables `wharf_hook_events` and `wharf_hook_runs`, migration 4), shared by every
 * instance on that database. Each batch is one transaction of two multi-row upserts.
 */
export class PostgresRunHistory implements RunHistory {
  readonly description = 'postgres';
  readonly #backend: PostgresBackend;
  readonly #retention: RetentionSettings;
  readonly #writer: BatchWriter;
  readonly #now: () => number;
  #prunedAt = 0;

  constructor(backend: PostgresBackend, options: PostgresRunHistoryOptions) {
    this.#backend = backend;
    this.#retention = { limit: options.limit, maxAgeMs: options.maxAgeMs };
    this.#now = options.now ?? Date.now;
    this.#writer = new BatchWriter({ write: (runs) => this.#write(runs), onError: options.onError });
  }

  async open(): Promise<void> {
    await this.#backend.pool();
  }

  record(run: RunRecord): void {
    this.#writer.add(run);
  }

  async #write(runs: RunRecord[]): Promise<void> {
    const events = new Map<string, RunRecord>();
    for (const run of runs) {
      const seen = events.get(run.eventId);
      if (seen === undefined || run.startedAt < seen.startedAt) events.set(run.eventId, run);
    }
    const pool = await this.#backend.pool();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO wharf_hook_events (event_id, event, upload_id, at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
         ON CONFLICT (event_id) DO UPDATE SET at = LEAST(wharf_hook_events.at, EXCLUDED.at)`,
        [
          [...events.keys()],
          [...events.values()].map((run) => run.event),
          [...events.values()].map((run) => run.uploadId),
          [...events.values()].map((run) => run.startedAt),
        ],
      );
      const finals = runs.filter((run) => replacedKey(run) !== undefined);
      if (finals.length > 0) {
        await client.query(
          `DELETE FROM wharf_hook_runs r USING unnest($1::text[], $2::text[]) AS gone (event_id, run_key)
            WHERE r.event_id = gone.event_id AND r.run_key = gone.run_key`,
          [finals.map((run) => run.eventId), finals.map((run) => replacedKey(run) ?? '')],
        );
      }
      await client.query(
        `INSERT INTO wharf_hook_runs (event_id, run_key, record)
         SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[])
         ON CONFLICT (event_id, run_key) DO UPDATE SET record = EXCLUDED.record`,
        [runs.map((run) => run.eventId), runs.map(runKey), runs.map((run) => JSON.stringify(run))],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    if (this.#now() - this.#prunedAt >= pruneIntervalMs) await this.#prune();
  }

  async #prune(): Promise<void> {
    this.#prunedAt = this.#now();
    const pool = await this.#backend.pool();
    await pool.query('DELETE FROM wharf_hook_events WHERE at < $1', [this.#now() - this.#retention.maxAgeMs]);
    await pool.query(
      `DELETE FROM wharf_hook_events WHERE event_id IN
         (SELECT event_id FROM wharf_hook_events ORDER BY at DESC, event_id OFFSET $1)`,
      [this.#retention.limit],
    );
  }

  async events(query: EventQuery): Promise<EventSummary[]> {
    const pool = await this.#backend.pool();
    const limit = queryLimit(query);
    const oldest = Math.max(query.since ?? 0, this.#now() - this.#retention.maxAgeMs);
    const found: EventSummary[] = [];
    for (let offset = 0; found.length < limit; offset += page) {
      const { rows } = await pool.query<{ event_id: string; runs: RunRecord[] | null }>(
        `SELECT e.event_id,
                (SELECT json_agg(r.record) FROM wharf_hook_runs r WHERE r.event_id = e.event_id) AS runs
           FROM wharf_hook_events e
          WHERE ($1::text IS NULL OR e.upload_id = $1) AND ($2::text IS NULL OR e.event = $2) AND e.at >= $3
          ORDER BY e.at DESC, e.event_id
          LIMIT $4 OFFSET $5`,
        [query.uploadId ?? null, query.event ?? null, oldest, page, offset],
      );
      for (const row of rows) {
        const summary = summarise(row.event_id, row.runs ?? []);
        if (summary !== undefined && found.length < limit && matches(summary, query)) found.push(summary);
      }
      if (rows.length < page) break;
    }
    return found;
  }

  async event(eventId: string): Promise<EventSummary | undefined> {
    const pool = await this.#backend.pool();
    const { rows } = await pool.query<{ record: RunRecord }>(
      'SELECT record FROM wharf_hook_runs WHERE event_id = $1',
      [eventId],
    );
    return summarise(
      eventId,
      rows.map((row) => row.record),
    );
  }

  flush(): Promise<void> {
    return this.#writer.flush();
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
