import type { HookEventName } from '../events.ts';

export const runStatuses = ['completed', 'failed', 'skipped', 'timed_out', 'pending', 'running'] as const;
export type RunStatus = (typeof runStatuses)[number];
/** The statuses a finished run ends with (`pending` and `running` are only seen by {@link RunLog.watch}). */
export type FinalRunStatus = Exclude<RunStatus, 'pending' | 'running'>;

/** One delivery of one event to one target. */
export interface RunRecord {
  /** Shared by every target of one event; also the HTTP hook's `Idempotency-Key`. */
  readonly eventId: string;
  readonly event: HookEventName;
  /** The hook's name as targets see it (argv, `Hook-Name`); today always the event name. */
  readonly hook: string;
  /** `file:/path`, `dir:/path/<hook>` or `http:<url>`. */
  readonly target: string;
  readonly uploadId: string;
  readonly blocking: boolean;
  readonly status: RunStatus;
  /** Unix milliseconds. */
  readonly startedAt: number;
  readonly durationMs: number;
  readonly error?: string;
  readonly exitCode?: number;
  readonly httpStatus?: number;
  /** The start of what the hook answered or printed (stdout, stderr, response body). */
  readonly output?: string;
  /** 1 for the first attempt of this event at this target, 2 for the first retry, … */
  readonly attempt?: number;
  /**
   * A failed or timed-out run of a hook whose failure let the operation go on (`critical: false`,
   * `continueOnFailure: true`): its event shows `completed_with_warnings`, not `failed`.
   */
  readonly warning?: boolean;
}

export type RunListener = (record: RunRecord) => void;

/**
 * The most recent run records in a bounded ring, cumulative counts per status, and a subscription for new
 * records (tests wait on it instead of sleeping; metrics can count from it).
 */
export class RunLog {
  readonly capacity: number;
  readonly #ring: RunRecord[] = [];
  #next = 0;
  readonly #listeners = new Set<RunListener>();
  /** Listeners of every transition: pending, running and final records. */
  readonly #watchers = new Set<RunListener>();
  readonly #totals: Record<FinalRunStatus, number> = { completed: 0, failed: 0, skipped: 0, timed_out: 0 };
  /**
   * Post deliveries queued or running, by event id, then target (one record, or several when the event goes to
   * several targets): gone once their final record is added. Keyed by the event id alone rather than by
   * `<eventId> <target>`, a string built, flattened and hashed three times for every delivery.
   */
  readonly #pending = new Map<string, RunRecord | RunRecord[]>();

  constructor(capacity = 1000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('RunLog capacity must be >= 1');
    this.capacity = capacity;
  }

  /** Notes a queued delivery; {@link RunLog.add} of its final record (same event id and target) clears it. */
  addPending(record: Omit<RunRecord, 'status' | 'durationMs'>): void {
    const pending: RunRecord = { ...record, status: 'pending', durationMs: 0 };
    this.#keep(pending, false);
    this.#notify(this.#watchers, pending);
  }

  /** {@link RunLog.addPending} of a record built whole by the caller (status `pending`): kept as it is, no copy. */
  setPending(record: RunRecord): void {
    this.#keep(record, false);
    this.#notify(this.#watchers, record);
  }

  /**
   * {@link RunLog.markRunning} of a record built whole by the caller (status `running`): kept as it is, no copy.
   */
  setRunning(record: RunRecord): void {
    this.#keep(record, true);
    this.#notify(this.#watchers, record);
  }

  /** Tells watchers a delivery started (it stays pending until its final record). */
  markRunning(record: Omit<RunRecord, 'status' | 'durationMs'>): void {
    const running: RunRecord = { ...record, status: 'running', durationMs: 0 };
    this.#keep(running, true);
    this.#notify(this.#watchers, running);
  }

  /**
   * Keeps `record` as the pending one of its event and target (in the place of the one it replaces);
   * `replaceOnly`: only when one is there.
   */
  #keep(record: RunRecord, replaceOnly: boolean): void {
    const kept = this.#pending.get(record.eventId);
    if (kept === undefined) {
      if (!replaceOnly) this.#pending.set(record.eventId, record);
    } else if (Array.isArray(kept)) {
      const at = kept.findIndex((one) => one.target === record.target);
      if (at !== -1) kept[at] = record;
      else if (!replaceOnly) kept.push(record);
    } else if (kept.target === record.target) this.#pending.set(record.eventId, record);
    else if (!replaceOnly) this.#pending.set(record.eventId, [kept, record]);
  }

  /** Forgets the pending record of this record's event and target. */
  #settle(record: RunRecord): void {
    const kept = this.#pending.get(record.eventId);
    if (kept === undefined) return;
    if (!Array.isArray(kept)) {
      if (kept.target === record.target) this.#pending.delete(record.eventId);
      return;
    }
    const at = kept.findIndex((one) => one.target === record.target);
    if (at === -1) return;
    kept.splice(at, 1);
    if (kept.length === 0) this.#pending.delete(record.eventId);
  }

  /** Calls `listener` for every transition (pending, running, final); returns the unsubscribe function. */
  watch(listener: RunListener): () => void {
    this.#watchers.add(listener);
    return () => {
      this.#watchers.delete(listener);
    };
  }

  #notify(listeners: ReadonlySet<RunListener>, record: RunRecord): void {
    // Most servers watch nothing (no admin API, no test waiting): no copy of an empty set for every record.
    if (listeners.size === 0) return;
    // One listener (the metrics, on a server) is called without copying the set for every record.
    if (listeners.size === 1) {
      const [listener] = listeners;
      try {
        (listener as RunListener)(record);
      } catch {
        // As below.
      }
      return;
    }
    // A copy: listeners added by a listener wait for the next record.
    for (const listener of [...listeners]) {
      try {
        listener(record);
      } catch {
        // A listener's failure must not break dispatch or the other listeners.
      }
    }
  }

  /** Deliveries queued or running now, oldest first (by event), with status `pending` or `running`. */
  pending(): RunRecord[] {
    const records: RunRecord[] = [];
    for (const kept of this.#pending.values()) {
      if (Array.isArray(kept)) records.push(...kept);
      else records.push(kept);
    }
    return records;
  }

  add(record: RunRecord): void {
    if (record.status === 'pending') {
      this.addPending(record);
      return;
    }
    if (record.status === 'running') {
      this.markRunning(record);
      return;
    }
    this.#settle(record);
    if (this.#ring.length < this.capacity) this.#ring.push(record);
    else this.#ring[this.#next] = record;
    this.#next = (this.#next + 1) % this.capacity;
    this.#totals[record.status] += 1;
    this.#notify(this.#listeners, record);
    this.#notify(this.#watchers, record);
  }

  /** Kept records, oldest first. */
  records(): RunRecord[] {
    if (this.#ring.length < this.capacity) return [...this.#ring];
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }

  filter(predicate: (record: RunRecord) => boolean): RunRecord[] {
    return this.records().filter(predicate);
  }

  /** Runs recorded since start, per status (not bounded by the ring). */
  totals(): Readonly<Record<FinalRunStatus, number>> {
    return { ...this.#totals };
  }

  /** Calls `listener` for every new record; returns the unsubscribe function. */
  subscribe(listener: RunListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /**
   * Resolves with the first record matching `predicate`, among the kept ones or the next ones. Rejects after
   * `timeoutMs` (default 10 s) so a test that waits for a run that never happens fails instead of hanging.
   */
  waitFor(predicate: (record: RunRecord) => boolean, timeoutMs = 10_000): Promise<RunRecord> {
    const existing = this.records().find(predicate);
    if (existing !== undefined) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new Error(`no matching hook run recorded within ${timeoutMs} ms`));
      }, timeoutMs);
      const unsubscribe = this.subscribe((record) => {
        if (!predicate(record)) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(record);
      });
    });
  }

  /** Resolves once `count` records match `predicate` (kept or new). */
  waitForCount(
    predicate: (record: RunRecord) => boolean,
    count: number,
    timeoutMs = 10_000,
  ): Promise<RunRecord[]> {
    const matches = this.filter(predicate);
    if (matches.length >= count) return Promise.resolve(matches.slice(0, count));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(
          new Error(`only ${matches.length} of ${count} matching hook runs recorded within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      const unsubscribe = this.subscribe((record) => {
        if (!predicate(record)) return;
        matches.push(record);
        if (matches.length < count) return;
        clearTimeout(timer);
        unsubscribe();
        resolve(matches);
      });
    });
  }
}
