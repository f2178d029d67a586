import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type { HookRequest, UploadEventName } from './events.ts';
import type { CloudEventEnvelope } from './formats/cloudevents.ts';

/** What the outbox keeps of a delivery: everything a transport needs, nothing live (no abort signal). */
export interface StoredDelivery {
  readonly eventId: string;
  readonly event: UploadEventName;
  readonly hook: string;
  readonly uploadId: string;
  readonly payload: string;
  readonly request: HookRequest;
  /** A named hook's name, for run records. */
  readonly label?: string;
  /** CloudEvents: the mode and binary-mode attributes, which the payload alone does not carry. */
  readonly cloudEvent?: CloudEventEnvelope;
}

/** One undelivered event for one target. */
export interface StoredEntry {
  /** The target's stable name (`amqp`, `kafka`, `http:<url>`). */
  readonly target: string;
  readonly delivery: StoredDelivery;
}

type JournalLine =
  | { readonly t: 'add'; readonly entry: StoredEntry }
  | { readonly t: 'done'; readonly key: string };

export function entryKey(target: string, eventId: string): string {
  return `${target} ${eventId}`;
}

/**
 * The outbox's append-only journal: one JSON line per added entry and one per delivered entry. Replaying it
 * gives the entries still owed, in the order they were added. Writes are batched (every line queued while a
 * write is running goes out in the next one) and strictly ordered; a torn last line after a crash is skipped.
 */
export class OutboxJournal {
  readonly file: string;
  #handle: Awaited<ReturnType<typeof open>> | undefined;
  #buffer: string[] = [];
  #writing: Promise<void> = Promise.resolve();
  #scheduled = false;
  #linesWritten = 0;

  constructor(directory: string) {
    this.file = path.join(directory, 'journal.jsonl');
  }

  /** Lines in the file since the last compaction (so the owner knows when to compact). */
  get lines(): number {
    return this.#linesWritten;
  }

  /** Reads the entries still owed, then rewrites the file with only those and opens it for appending. */
  async open(): Promise<StoredEntry[]> {
    await mkdir(path.dirname(this.file), { recursive: true });
    const text = await readFile(this.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const owed = new Map<string, StoredEntry>();
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      let parsed: JournalLine;
      try {
        parsed = JSON.parse(line) as JournalLine;
      } catch {
        continue; // a line torn by a crash mid-write
      }
      if (parsed.t === 'add')
        owed.set(entryKey(parsed.entry.target, parsed.entry.delivery.eventId), parsed.entry);
      else owed.delete(parsed.key);
    }
    const entries = [...owed.values()];
    await this.#rewrite(entries);
    // Lines queued while the file was being read go out now, after the ones it already held.
    await this.#flush();
    return entries;
  }

  add(entry: StoredEntry): void {
    this.#queue(JSON.stringify({ t: 'add', entry }));
  }

  done(key: string): void {
    this.#queue(JSON.stringify({ t: 'done', key }));
  }

  /** Replaces the file with just these entries (after the queued writes). */
  compact(entries: readonly StoredEntry[]): Promise<void> {
    const run = this.#writing.then(() => this.#flush()).then(() => this.#rewrite(entries));
    this.#writing = run.catch(() => {});
    return run;
  }

  /** Resolves once every queued line is written. */
  async flushed(): Promise<void> {
    while (this.#buffer.length > 0 || this.#scheduled) {
      await this.#writing;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await this.#writing;
  }

  async close(): Promise<void> {
    await this.flushed();
    await this.#handle?.close();
    this.#handle = undefined;
  }

  #queue(line: string): void {
    this.#buffer.push(line);
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#writing = this.#writing.then(() => {
      this.#scheduled = false;
      return this.#flush();
    });
  }

  async #flush(): Promise<void> {
    if (this.#buffer.length === 0 || this.#handle === undefined) return;
    const lines = this.#buffer;
    this.#buffer = [];
    await this.#handle.write(`${lines.join('\n')}\n`);
    this.#linesWritten += lines.length;
  }

  async #rewrite(entries: readonly StoredEntry[]): Promise<void> {
    const temporary = `${this.file}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      const text = entries.map((entry) => JSON.stringify({ t: 'add', entry })).join('\n');
      await handle.write(text === '' ? '' : `${text}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.file);
    await this.#handle?.close();
    this.#handle = await open(this.file, 'a');
    this.#linesWritten = entries.length;
  }
}
