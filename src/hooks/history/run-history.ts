import { type RunLog, type RunRecord, type RunStatus, runStatuses } from './run-log.ts';

/**
 * The persisted history of hook runs, grouped by event: what the admin API lists and the dashboard shows. It is
 * fed from {@link RunLog.watch} (every transition: pending, running, final) and keeps, per event, the latest
 * state of each run (one per target and attempt). Recording never waits for the store: transitions are
 * buffered and written in batches, so a slow disk or database never slows an upload.
 */

/**
 * What an event shows: the worst latest run per target, or `completed_with_warnings` when every failure among
 * them let the operation go on (Borgitory's "completed with warnings").
 */
export const eventStatuses = [...runStatuses, 'completed_with_warnings'] as const;
export type EventStatus = (typeof eventStatuses)[number];

/** One hook event and every run it caused; `status` is the worst latest run per target (see {@link EventStatus}). */
export interface EventSummary {
  readonly eventId: string;
  readonly event: string;
  readonly uploadId: string;
  /** Unix ms: when its first run started. */
  readonly at: number;
  readonly status: EventStatus;
  /** Oldest first; every attempt at every target. */
  readonly runs: readonly RunRecord[];
}

export interface EventQuery {
  readonly uploadId?: string;
  readonly event?: string;
  readonly status?: EventStatus;
  /** Unix ms: events at or after. */
  readonly since?: number;
  /** At most this many (newest first); default 100. */
  readonly limit?: number;
}

export interface RunHistory {
  /** Where the history lives, for logs (never a secret). */
  readonly description: string;
  /** Creates folders or tables and loads what is needed; call once before recording. */
  open(): Promise<void>;
  /** Buffers one transition; returns at once. */
  record(run: RunRecord): void;
  /** Events matching the query, newest first. */
  events(query: EventQuery): Promise<EventSummary[]>;
  /** One event with every run and attempt; undefined when unknown (or removed by retention). */
  event(eventId: string): Promise<EventSummary | undefined>;
  /** Writes what is buffered. */
  flush(): Promise<void>;
  /** Flushes and stops the timers. */
  close(): Promise<void>;
}

export interface RetentionSettings {
  /** Events kept at most. */
  readonly limit: number;
  /** Milliseconds an event is kept. */
  readonly maxAgeMs: number;
}

/** Worst first: the status an event shows is the worst of its targets' latest runs. */
const severity: Readonly<Record<RunStatus, number>> = {
  failed: 5,
  timed_out: 4,
  running: 3,
  pending: 2,
  skipped: 1,
  completed: 0,
};

function isProvisional(run: RunRecord): boolean {
  return run.status === 'pending' || run.status === 'running';
}

/**
 * The key of a run that is still pending or running: its final record replaces it. Attempts are numbered per
 * round of delivery, and a resent event starts again at 1, so a final run also carries its start time: the
 * runs of an earlier round are kept beside the new ones.
 */
export function provisionalKey(run: RunRecord): string {
  return `${run.target} ${run.attempt ?? 1}`;
}

/** The key of one run inside its event (see {@link provisionalKey}). */
export function runKey(run: RunRecord): string {
  return isProvisional(run) ? provisionalKey(run) : `${provisionalKey(run)} ${run.startedAt}`;
}

/** The provisional key a final run replaces; undefined for a provisional run. */
export function replacedKey(run: RunRecord): string | undefined {
  return isProvisional(run) ? undefined : provisionalKey(run);
}

function later(a: RunRecord, b: RunRecord): boolean {
  return a.startedAt !== b.startedAt ? a.startedAt > b.startedAt : (a.attempt ?? 1) >= (b.attempt ?? 1);
}

/** The event's status from its runs: per target the latest run counts, then the worst of those. */
export function eventStatus(runs: readonly RunRecord[]): EventStatus {
  const latest = new Map<string, RunRecord>();
  for (const run of runs) {
    const seen = latest.get(run.target);
    if (seen === undefined || later(run, seen)) latest.set(run.target, run);
  }
  let worst: RunStatus = 'completed';
  for (const run of latest.values()) if (severity[run.status] > severity[worst]) worst = run.status;
  if (worst !== 'failed' && worst !== 'timed_out') return worst;
  const broken = [...latest.values()].filter((run) => run.status === 'failed' || run.status === 'timed_out');
  return broken.every((run) => run.warning === true) ? 'completed_with_warnings' : worst;
}

/** Builds the summary of one event from its runs (any order). */
export function summarise(eventId: string, runs: readonly RunRecord[]): EventSummary | undefined {
  const first = runs[0];
  if (first === undefined) return undefined;
  const ordered = [...runs].sort(
    (a, b) =>
      a.startedAt - b.startedAt || (a.attempt ?? 1) - (b.attempt ?? 1) || a.target.localeCompare(b.target),
  );
  return {
    eventId,
    event: first.event,
    uploadId: first.uploadId,
    at: Math.min(...runs.map((run) => run.startedAt)),
    status: eventStatus(runs),
    runs: ordered,
  };
}

export function matches(summary: EventSummary, query: EventQuery): boolean {
  return (
    (query.uploadId === undefined || summary.uploadId === query.uploadId) &&
    (query.event === undefined || summary.event === query.event) &&
    (query.status === undefined || summary.status === query.status) &&
    (query.since === undefined || summary.at >= query.since)
  );
}

export const defaultQueryLimit = 100;
/** The most events one query returns. */
export const maxQueryLimit = 1000;

export function queryLimit(query: EventQuery): number {
  return Math.min(Math.max(1, query.limit ?? defaultQueryLimit), maxQueryLimit);
}

/**
 * Collects transitions until the next flush, keeping only the latest per run: a delivery's pending, running and
 * final records arriving within one flush interval become one write.
 */
export class TransitionBuffer {
  #runs = new Map<string, RunRecord>();

  add(run: RunRecord): void {
    const replaced = replacedKey(run);
    // A pending or running state not yet written is superseded by the final record (the store drops its own).
    if (replaced !== undefined) this.#runs.delete(`${run.eventId} ${replaced}`);
    const key = `${run.eventId} ${runKey(run)}`;
    // Delete first so the map's order is the order of the latest transitions.
    this.#runs.delete(key);
    this.#runs.set(key, run);
  }

  get size(): number {
    return this.#runs.size;
  }

  take(): RunRecord[] {
    const runs = [...this.#runs.values()];
    this.#runs = new Map();
    return runs;
  }
}

/**
 * Calls `write` with the buffered runs every `intervalMs` (or sooner when `maxBuffered` pile up), one batch at a
 * time. A failing write is reported and its runs dropped: history is best effort and must never grow without
 * bound while its store is down.
 */
export class BatchWriter {
  readonly #buffer = new TransitionBuffer();
  readonly #write: (runs: RunRecord[]) => Promise<void>;
  readonly #onError: (error: unknown, dropped: number) => void;
  readonly #intervalMs: number;
  readonly #maxBuffered: number;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(options: {
    write: (runs: RunRecord[]) => Promise<void>;
    onError: (error: unknown, dropped: number) => void;
    intervalMs?: number;
    maxBuffered?: number;
  }) {
    this.#write = options.write;
    this.#onError = options.onError;
    this.#intervalMs = options.intervalMs ?? 200;
    this.#maxBuffered = options.maxBuffered ?? 5000;
  }

  add(run: RunRecord): void {
    this.#buffer.add(run);
    if (this.#buffer.size >= this.#maxBuffered) {
      void this.flush();
      return;
    }
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush();
      }, this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Writes what is buffered now, after the batch being written (if any). */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const runs = this.#buffer.take();
    const previous = this.#writing;
    const next = previous.then(async () => {
      if (runs.length === 0) return;
      try {
        await this.#write(runs);
      } catch (error) {
        this.#onError(error, runs.length);
      }
    });
    this.#writing = next;
    return next;
  }
}

/** Feeds a history from a run log; returns the unsubscribe function. */
export function recordRuns(runs: RunLog, history: RunHistory): () => void {
  return runs.watch((run) => history.record(run));
}
