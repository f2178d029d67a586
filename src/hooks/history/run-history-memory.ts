import {
  type EventQuery,
  type EventSummary,
  matches,
  queryLimit,
  type RetentionSettings,
  replacedKey,
  runKey,
  summarise,
} from './run-history.ts';
import type { RunRecord } from './run-log.ts';

interface IndexedEvent {
  readonly runs: Map<string, RunRecord>;
  readonly uploadId: string;
  readonly at: number;
  /** The segment its first run was written to (file store): older segments hold only evicted events. */
  readonly segment: number;
}

/**
 * Events and their runs in memory, oldest first, bounded by the retention settings. The file history keeps its
 * whole (bounded) history here and on disk only for restarts.
 */
export class HistoryIndex {
  readonly #events = new Map<string, IndexedEvent>();
  readonly #byUpload = new Map<string, Set<string>>();
  readonly #retention: RetentionSettings;
  readonly #now: () => number;

  constructor(retention: RetentionSettings, now: () => number = Date.now) {
    this.#retention = retention;
    this.#now = now;
  }

  get size(): number {
    return this.#events.size;
  }

  add(run: RunRecord, segment = 0): void {
    let indexed = this.#events.get(run.eventId);
    if (indexed === undefined) {
      if (run.startedAt < this.#now() - this.#retention.maxAgeMs) return;
      indexed = { runs: new Map(), uploadId: run.uploadId, at: run.startedAt, segment };
      this.#events.set(run.eventId, indexed);
      let ids = this.#byUpload.get(run.uploadId);
      if (ids === undefined) {
        ids = new Set();
        this.#byUpload.set(run.uploadId, ids);
      }
      ids.add(run.eventId);
      this.prune();
    }
    const replaced = replacedKey(run);
    if (replaced !== undefined) indexed.runs.delete(replaced);
    indexed.runs.set(runKey(run), run);
  }

  /** Drops the oldest events beyond the limit or older than the maximum age. */
  prune(): void {
    const oldest = this.#now() - this.#retention.maxAgeMs;
    for (const [eventId, indexed] of this.#events) {
      if (this.#events.size <= this.#retention.limit && indexed.at >= oldest) break;
      this.#events.delete(eventId);
      const ids = this.#byUpload.get(indexed.uploadId);
      ids?.delete(eventId);
      if (ids?.size === 0) this.#byUpload.delete(indexed.uploadId);
    }
  }

  /** The segment of the oldest kept event; older segments can be deleted. */
  oldestSegment(): number | undefined {
    for (const indexed of this.#events.values()) return indexed.segment;
    return undefined;
  }

  event(eventId: string): EventSummary | undefined {
    const indexed = this.#events.get(eventId);
    return indexed === undefined ? undefined : summarise(eventId, [...indexed.runs.values()]);
  }

  events(query: EventQuery): EventSummary[] {
    const limit = queryLimit(query);
    const ids =
      query.uploadId === undefined
        ? [...this.#events.keys()]
        : [...(this.#byUpload.get(query.uploadId) ?? [])];
    const found: EventSummary[] = [];
    // Newest first: the map holds events in the order they were first seen.
    for (let index = ids.length - 1; index >= 0 && found.length < limit; index--) {
      const summary = this.event(ids[index] ?? '');
      if (summary !== undefined && matches(summary, query)) found.push(summary);
    }
    return found.sort((a, b) => b.at - a.at);
  }
}
