import { type FileHandle, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import {
  BatchWriter,
  type EventQuery,
  type EventSummary,
  type RetentionSettings,
  type RunHistory,
} from './run-history.ts';
import { HistoryIndex } from './run-history-memory.ts';
import type { RunRecord } from './run-log.ts';

const segmentPattern = /^(\d{10})\.jsonl$/;

export interface FileRunHistoryOptions extends RetentionSettings {
  /** Lines per segment before a new one starts (default 20000). */
  readonly segmentLines?: number;
  readonly onError: (error: unknown, dropped: number) => void;
  readonly now?: () => number;
}

/**
 * Run history under a folder of the info storage: append-only JSON-lines segments (`0000000001.jsonl`, …), one
 * run transition per line, written in batches off the request path. The whole kept history is also in memory
 * (it is bounded by the retention settings); on start the segments are read back, and segments holding only
 * removed events are deleted. A torn last line (crash mid-write) is skipped.
 */
export class FileRunHistory implements RunHistory {
  readonly #directory: string;
  readonly #index: HistoryIndex;
  readonly #writer: BatchWriter;
  readonly #segmentLines: number;
  #segment = 0;
  #lines = 0;
  #handle: FileHandle | undefined;

  constructor(directory: string, options: FileRunHistoryOptions) {
    this.#directory = path.resolve(directory);
    this.#index = new HistoryIndex(options, options.now);
    this.#segmentLines = options.segmentLines ?? 20_000;
    this.#writer = new BatchWriter({ write: (runs) => this.#append(runs), onError: options.onError });
  }

  get description(): string {
    return `files in ${this.#directory}`;
  }

  async open(): Promise<void> {
    await mkdir(this.#directory, { recursive: true });
    const segments = await this.#segments();
    for (const segment of segments) {
      const text = await readFile(this.#file(segment), 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        if (line === '') continue;
        try {
          this.#index.add(JSON.parse(line) as RunRecord, segment);
        } catch {
          // A line cut short by a crash: the runs before it are intact.
        }
      }
    }
    this.#index.prune();
    this.#segment = (segments.at(-1) ?? 0) + 1;
    await this.#removeOldSegments();
  }

  record(run: RunRecord): void {
    this.#index.add(run, this.#segment);
    this.#writer.add(run);
  }

  async events(query: EventQuery): Promise<EventSummary[]> {
    this.#index.prune();
    return this.#index.events(query);
  }

  async event(eventId: string): Promise<EventSummary | undefined> {
    return this.#index.event(eventId);
  }

  flush(): Promise<void> {
    return this.#writer.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.#handle?.close();
    this.#handle = undefined;
  }

  #file(segment: number): string {
    return path.join(this.#directory, `${String(segment).padStart(10, '0')}.jsonl`);
  }

  async #segments(): Promise<number[]> {
    const names = await readdir(this.#directory);
    return names
      .map((name) => segmentPattern.exec(name)?.[1])
      .filter((digits): digits is string => digits !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  async #append(runs: RunRecord[]): Promise<void> {
    if (this.#handle === undefined) this.#handle = await open(this.#file(this.#segment), 'a');
    await this.#handle.write(`${runs.map((run) => JSON.stringify(run)).join('\n')}\n`);
    this.#lines += runs.length;
    if (this.#lines >= this.#segmentLines) {
      await this.#handle.close();
      this.#handle = undefined;
      this.#segment += 1;
      this.#lines = 0;
      await this.#removeOldSegments();
    }
  }

  /** Deletes the segments older than the oldest kept event's first one. */
  async #removeOldSegments(): Promise<void> {
    this.#index.prune();
    const keepFrom = this.#index.oldestSegment() ?? this.#segment;
    for (const segment of await this.#segments()) {
      if (segment >= keepFrom) break;
      await rm(this.#file(segment), { force: true });
    }
  }
}
