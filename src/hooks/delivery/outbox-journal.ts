import { mkdir, open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { writeAll } from '../../write-all.ts';
import type { DeadEntry, DeathNote, StoredDelivery, StoredEntry } from './stored.ts';

export type { StoredDelivery, StoredEntry } from './stored.ts';

/**
 * An added entry waiting in the journal's queue; undefined once it was delivered before its line was written:
 * the queue then no longer holds its delivery (payload, request and headers) until the next write. Held there
 * for up to {@link addLineDelayMs}, the deliveries of a busy process outlived a scavenge of the young generation
 * and were promoted, to be collected later as old garbage (hook-event-path: 18% fewer bytes promoted).
 */
interface Unwritten {
  entry: StoredEntry | undefined;
}

/** What the journal holds after a replay: owed entries in order, and dead letters. */
export interface JournalState {
  readonly owed: StoredEntry[];
  readonly dead: DeadEntry[];
}

type JournalLine =
  | { readonly t: 'add'; readonly entry: StoredEntry }
  | { readonly t: 'done'; readonly key: string }
  /** An owed entry became a dead letter. */
  | { readonly t: 'dead'; readonly key: string; readonly note: DeathNote }
  /** A dead letter as compaction writes it. */
  | { readonly t: 'buried'; readonly entry: DeadEntry }
  /** A dead letter was taken back (to be added again). */
  | { readonly t: 'revived'; readonly key: string }
  /** A dead letter was dropped (the oldest, beyond the dead-letter limit). */
  | { readonly t: 'dropped'; readonly key: string };

/** How long a delivered entry's line may wait for another line to share its write. */
export const doneLineDelayMs = 20;

/**
 * How long an added entry's line waits for others to share its write (as Kafka's `linger.ms`, 5 ms by default
 * in librdkafka). Each write is a request to libuv's thread pool: a wake-up of one of its threads, the write
 * system call there, and a wake-up of the event loop when it is done. Written after each turn of the event loop
 * that added events, a loaded server wrote about once per upload; within 5 ms, the events of every request
 * answered in that time share one write. The event is sent meanwhile: as before, a crash of Wharf loses the
 * lines not yet written (now those of the last 5 ms), and a broker outage or a restart loses none.
 */
export const addLineDelayMs = 5;

/**
 * Lines read, or written, between two turns of the event loop when the journal is replayed or rewritten: a journal
 * of 50,000 waiting events held the event loop for about 0.9 s in one piece while the server answered uploads.
 */
export const linesPerTurn = 1000;

/** How long lines whose write failed (a full disk, an I/O error) wait before they are written again. */
export const failedWriteRetryMs = 1000;

/** Bytes of the buffer the journal encodes its lines into before a write (grown for a larger batch). */
const scratchBytes = 64 * 1024;

/**
 * The journal line of an added entry, in pieces: the entry without its payload, then the payload as the JSON
 * it already is (`payloadJson`, after its length in UTF-16 units, `payloadLength`), not escaped into a string
 * again. Every payload is JSON text made by JSON.stringify (the formats), so the line is valid JSON; replay
 * takes the payload's text back from the line by its length ({@link entryOf}). Written straight into the write
 * buffer, the pieces spare copies of the payload (its escaped string, the line, the lines joined) that cost
 * every event about 3 KB of garbage and 2 us of CPU. A payload that does not look like a JSON object or array
 * is kept as an escaped string, as every payload was before.
 */
export function addLinePieces(entry: StoredEntry): string[] {
  const delivery = entry.delivery;
  const payload = delivery.payload;
  const first = payload.charCodeAt(0);
  const last = payload.charCodeAt(payload.length - 1);
  const raw = (first === 0x7b && last === 0x7d) || (first === 0x5b && last === 0x5d);
  if (!raw) return [JSON.stringify({ t: 'add', entry })];
  // Field by field (no spread, no rest): every post event writes one of these.
  const rest: Record<string, unknown> = {
    eventId: delivery.eventId,
    event: delivery.event,
    hook: delivery.hook,
    uploadId: delivery.uploadId,
  };
  if (delivery.sequence !== undefined) rest.sequence = delivery.sequence;
  rest.request = delivery.request;
  if (delivery.label !== undefined) rest.label = delivery.label;
  if (delivery.cloudEvent !== undefined) rest.cloudEvent = delivery.cloudEvent;
  rest.payloadLength = payload.length;
  const head: Record<string, unknown> = { target: entry.target };
  if (entry.addedAt !== undefined) head.addedAt = entry.addedAt;
  head.delivery = rest;
  // `...{"eventId":…}}}` without its last three braces, then the payload as the delivery's last field.
  const text = JSON.stringify({ t: 'add', entry: head });
  return [text.slice(0, -3), ',"payloadJson":', payload, '}}}'];
}

/** {@link addLinePieces} as one line (compaction, tests). */
export function addLine(entry: StoredEntry): string {
  return addLinePieces(entry).join('');
}

/** A delivery as {@link addLinePieces} writes it. */
type LineDelivery = StoredDelivery & { readonly payloadJson?: unknown; readonly payloadLength?: number };

/**
 * An entry of a journal line (`line`, parsed), its payload as text: the text of `payloadJson` is the end of the
 * line but its last three braces, `payloadLength` units long (the same text as written, no JSON.stringify).
 */
function entryOf<T extends StoredEntry>(parsed: T, line: string): T {
  const written = parsed.delivery as LineDelivery;
  if (written.payloadJson === undefined) return parsed;
  const { payloadJson: _json, payloadLength, ...delivery } = written;
  const end = line.lastIndexOf('}}}');
  const length = payloadLength ?? -1;
  // The payload follows the colon of `"payloadJson":`; anything else (a line not as written) is re-serialised.
  const found = length > 0 && end > length && line.charCodeAt(end - length - 1) === 0x3a;
  const payload = found ? line.slice(end - length, end) : JSON.stringify(_json);
  return { ...parsed, delivery: { ...delivery, payload } };
}

export function entryKey(target: string, eventId: string): string {
  return `${target} ${eventId}`;
}

/**
 * The outbox's append-only journal: one JSON line per added entry, one per delivered entry, one per entry
 * dead-lettered or revived; an entry delivered before its line was written leaves none. Replaying it gives the
 * entries still owed, in the order they were added, and the dead letters. Writes are batched (the lines queued
 * within {@link addLineDelayMs}, and every line queued while a write is running, go out in one write) and
 * strictly ordered; a torn last line after a crash is skipped.
 */
export class OutboxJournal {
  readonly file: string;
  #handle: Awaited<ReturnType<typeof open>> | undefined;
  /** The file was replaced by a compaction but could not be opened again: the next write opens it. */
  #reopen = false;
  /**
   * Queued lines: strings (pieces of lines, `\n` ending each) and added entries whose lines are made when they
   * are written, unless the entry was delivered first.
   */
  #buffer: (string | Unwritten)[] = [];
  /** Lines in {@link OutboxJournal.#buffer}. */
  #bufferLines = 0;
  /** The added entries in {@link OutboxJournal.#buffer}, by entry key. */
  readonly #unwritten = new Map<string, Unwritten>();
  /** What lines are encoded into for a write; one write at a time uses it (writes are chained). */
  #scratch: Buffer | undefined;
  #scratchBusy = false;
  #writing: Promise<void> = Promise.resolve();
  /**
   * Compactions asked for and not yet done: a write scheduled before one but run after it was asked for would put
   * lines queued since in the old file, which the rewrite then replaces by a state without them (lost at a crash).
   */
  #compactions = 0;
  #scheduled = false;
  /** Starts the write that {@link OutboxJournal.#scheduled} says is coming. */
  #flushTimer: NodeJS.Timeout | undefined;
  /** Writes delivered lines that no other line took along (see {@link OutboxJournal.done}). */
  #doneTimer: NodeJS.Timeout | undefined;
  #linesWritten = 0;
  /** Writes that failed (their lines stay queued): {@link OutboxJournal.flushed} rejects when one fails meanwhile. */
  #failures = 0;
  #lastError: unknown;

  readonly #doneDelayMs: number;
  readonly #addDelayMs: number;
  /** Whether the last write failed: the first failure of a run of them is reported, then the recovery. */
  #failing = false;
  /**
   * Told when a write fails after the last one succeeded (`error`), and when a write succeeds again after one
   * failed (no argument): the owner logs them, so a full disk is named once rather than at every retry.
   */
  onWriteFailure: ((error?: unknown) => void) | undefined;

  /**
   * `doneDelayMs`, `addDelayMs`: how long a delivered line, and an added one, may wait for others to share its
   * write (tests set them).
   */
  constructor(directory: string, doneDelayMs = doneLineDelayMs, addDelayMs = addLineDelayMs) {
    this.file = path.join(directory, 'journal.jsonl');
    this.#doneDelayMs = doneDelayMs;
    this.#addDelayMs = addDelayMs;
  }

  /** Lines in the file since the last compaction (so the owner knows when to compact). */
  get lines(): number {
    return this.#linesWritten;
  }

  /**
   * Reads the entries still owed and the dead letters, then rewrites the file with only those (unless it holds
   * nothing else already) and opens it. It yields to the event loop every {@link linesPerTurn} lines.
   */
  async open(): Promise<JournalState> {
    await mkdir(path.dirname(this.file), { recursive: true });
    const text = await readFile(this.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const owed = new Map<string, StoredEntry>();
    const dead = new Map<string, DeadEntry>();
    // Whether the file holds only the live entries, each once, as a rewrite would write them: then it stays.
    let compact = text === '' || text.endsWith('\n');
    let lines = 0;
    for (let start = 0; start < text.length; ) {
      const newline = text.indexOf('\n', start);
      const end = newline === -1 ? text.length : newline;
      const line = text.slice(start, end);
      start = end + 1;
      lines += 1;
      if (lines % linesPerTurn === 0) await nextTurn();
      if (line.trim() === '') {
        compact = false;
        continue;
      }
      let parsed: JournalLine;
      try {
        parsed = JSON.parse(line) as JournalLine;
      } catch {
        compact = false;
        continue; // a line torn by a crash mid-write
      }
      if (parsed.t === 'add')
        owed.set(entryKey(parsed.entry.target, parsed.entry.delivery.eventId), entryOf(parsed.entry, line));
      else if (parsed.t === 'buried')
        dead.set(entryKey(parsed.entry.target, parsed.entry.delivery.eventId), entryOf(parsed.entry, line));
      else {
        compact = false;
        if (parsed.t === 'done') owed.delete(parsed.key);
        else if (parsed.t === 'revived' || parsed.t === 'dropped') dead.delete(parsed.key);
        else {
          const entry = owed.get(parsed.key);
          owed.delete(parsed.key);
          if (entry !== undefined) dead.set(parsed.key, { ...entry, dead: parsed.note });
        }
      }
    }
    const state = { owed: [...owed.values()], dead: [...dead.values()] };
    // An entry added twice (a line written again) is live once: the file is rewritten.
    if (compact && owed.size + dead.size === lines) {
      this.#handle = await open(this.file, 'a');
      this.#linesWritten = lines;
    } else await this.#rewrite(state);
    // Lines queued while the file was being read go out now, after the ones it already held: on the write chain,
    // so that a write started meanwhile (a delivered line) waits for it rather than run beside it.
    const flushing = this.#writing.then(() => this.#flush());
    this.#writing = flushing.catch(() => undefined);
    await flushing;
    return state;
  }

  /**
   * An added entry (`key`: its {@link entryKey}). Its line is made and written with the next write (within
   * {@link addLineDelayMs}); an entry delivered before that is never written, nor its delivered line.
   */
  add(entry: StoredEntry, key = entryKey(entry.target, entry.delivery.eventId)): void {
    const unwritten: Unwritten = { entry };
    this.#unwritten.set(key, unwritten);
    this.#buffer.push(unwritten);
    this.#bufferLines += 1;
    if (!this.#scheduled) this.#schedule();
  }

  /**
   * A delivered entry. Its line waits for the next line that must be written (an added entry) or for
   * {@link doneLineDelayMs}, whichever comes first: a delivered line lost to a crash only means the event is
   * delivered once more (at least once), so it need not cost a write of its own. Under load the lines of the
   * confirms of one turn and the events of the next leave in one write, half the writes (and thread-pool
   * wake-ups) of a line per turn each.
   */
  done(key: string): void {
    const unwritten = this.#unwritten.get(key);
    if (unwritten !== undefined) {
      // Delivered before its line was written: neither line is needed (a crash now loses nothing owed).
      this.#unwritten.delete(key);
      unwritten.entry = undefined;
      this.#bufferLines -= 1;
      return;
    }
    this.#buffer.push(`{"t":"done","key":${JSON.stringify(key)}}\n`);
    this.#bufferLines += 1;
    if (this.#scheduled || this.#doneTimer !== undefined) return;
    this.#doneTimer = setTimeout(() => {
      this.#doneTimer = undefined;
      if (!this.#scheduled && this.#buffer.length > 0) this.#schedule(0);
    }, this.#doneDelayMs);
  }

  dead(key: string, note: DeathNote): void {
    this.#queue(`${JSON.stringify({ t: 'dead', key, note })}\n`);
  }

  revived(key: string): void {
    this.#queue(`${JSON.stringify({ t: 'revived', key })}\n`);
  }

  dropped(key: string): void {
    this.#queue(`${JSON.stringify({ t: 'dropped', key })}\n`);
  }

  /**
   * Replaces the file with just these entries, the state after every line queued so far: those lines are written
   * to the old file first (so it stays whole should the rewrite fail), lines queued from now on to the new one.
   */
  compact(state: JournalState): Promise<void> {
    const { pieces, lines } = this.#takeQueued();
    this.#compactions += 1;
    const run = this.#writing
      .then(() => this.#writeOrKeep(pieces, lines))
      .then(() => this.#rewrite(state))
      .finally(() => {
        this.#compactions -= 1;
        // Lines a write left queued while this compaction waited go out now, to the new file.
        if (this.#compactions === 0 && this.#buffer.length > 0 && !this.#scheduled) this.#schedule(0);
      });
    this.#writing = run.catch(() => {});
    return run;
  }

  /** Resolves once every queued line is written (delivered lines too, at once). */
  async flushed(): Promise<void> {
    const failures = this.#failures;
    while (this.#buffer.length > 0 || this.#scheduled) {
      if (!this.#scheduled) this.#schedule(0);
      else if (this.#flushTimer !== undefined) {
        // Not after the delay: now.
        clearTimeout(this.#flushTimer);
        this.#flushTimer = undefined;
        this.#startFlush();
      }
      await this.#writing;
      // A write failed: its lines wait for the retry; the caller learns it now rather than wait for the disk.
      if (this.#failures !== failures) throw this.#lastError;
      await new Promise((resolve) => setImmediate(resolve));
    }
    await this.#writing;
  }

  async close(): Promise<void> {
    try {
      await this.flushed();
    } finally {
      // A retry of failed lines (see #writeOrKeep) must not keep the process up nor come after the close.
      clearTimeout(this.#flushTimer);
      clearTimeout(this.#doneTimer);
      await this.#handle?.close();
      this.#handle = undefined;
    }
  }

  /** Queues the last piece of a line (ending with `\n`) and schedules the write. */
  #queue(end: string): void {
    this.#buffer.push(end);
    this.#bufferLines += 1;
    if (this.#scheduled) return;
    this.#schedule();
  }

  /**
   * Written once `delayMs` passed ({@link addLineDelayMs}; 0: after this turn of the event loop): every line
   * queued meanwhile (the events of every request served, the confirms of every broker answer read) goes out in
   * one write. A write per line cost each event a file system request and a wake-up of a thread-pool thread (a
   * tenth of the hooks' CPU per upload).
   */
  #schedule(delayMs = this.#addDelayMs): void {
    clearTimeout(this.#doneTimer);
    this.#doneTimer = undefined;
    this.#scheduled = true;
    if (delayMs <= 0) {
      setImmediate(() => this.#startFlush());
      return;
    }
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#startFlush();
    }, delayMs);
  }

  /** The scheduled write, after the one running (lines queued until it starts go with it). */
  #startFlush(): void {
    // A failed write keeps its lines queued (#writeOrKeep): the chain goes on, and no rejection is left
    // unhandled (which ended the process, and left every later write skipped by the rejected chain).
    this.#writing = this.#writing
      .then(() => {
        this.#scheduled = false;
        return this.#flush();
      })
      .catch(() => undefined);
  }

  async #flush(): Promise<void> {
    // During a compaction, lines queued since it was asked for wait for its new file.
    if (this.#buffer.length === 0 || (this.#handle === undefined && !this.#reopen) || this.#compactions > 0)
      return;
    const { pieces, lines } = this.#takeQueued();
    await this.#writeOrKeep(pieces, lines);
  }

  /**
   * {@link OutboxJournal.#write}; lines it could not write (a full disk, an I/O error) go back to the front of
   * the queue, after a newline that ends whatever part of them reached the file (replay skips that torn line),
   * and are written again within {@link failedWriteRetryMs}, or with the next lines queued.
   */
  async #writeOrKeep(pieces: string[], lines: number): Promise<void> {
    try {
      await this.#write(pieces, lines);
      if (this.#failing && pieces.length > 0) {
        this.#failing = false;
        this.onWriteFailure?.();
      }
    } catch (error) {
      this.#buffer.unshift('\n', ...pieces);
      this.#bufferLines += lines;
      this.#failures += 1;
      this.#lastError = error;
      if (!this.#failing) {
        this.#failing = true;
        this.onWriteFailure?.(error);
      }
      if (!this.#scheduled) this.#schedule(failedWriteRetryMs);
      throw error;
    }
  }

  /** Takes every queued line, as the pieces to write: the lines of added entries not yet delivered are made now. */
  #takeQueued(): { pieces: string[]; lines: number } {
    const pieces: string[] = [];
    for (const item of this.#buffer) {
      if (typeof item === 'string') pieces.push(item);
      else if (item.entry !== undefined) {
        for (const piece of addLinePieces(item.entry)) pieces.push(piece);
        pieces.push('\n');
      }
    }
    const lines = this.#bufferLines;
    this.#buffer = [];
    this.#bufferLines = 0;
    // Their lines are on their way: a delivery from now on is a delivered line.
    this.#unwritten.clear();
    return { pieces, lines };
  }

  /**
   * Writes queued lines (`pieces`, `lines` of them) in one write: encoded into a buffer kept for it, rather
   * than joined into one string that the write then copies again.
   */
  async #write(pieces: string[], lines: number): Promise<void> {
    if (pieces.length === 0) return;
    if (this.#handle === undefined && this.#reopen) {
      // A failure here keeps the lines queued and is tried again (#writeOrKeep).
      this.#handle = await open(this.file, 'a');
      this.#reopen = false;
    }
    if (this.#handle === undefined) {
      // Not open yet: they go out with the next flush, in their place before any line queued since.
      this.#buffer.unshift(...pieces);
      this.#bufferLines += lines;
      return;
    }
    let units = 0;
    for (const piece of pieces) units += piece.length;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    const most = units * 3;
    let buffer = this.#scratch;
    const shared = !this.#scratchBusy && most <= 1024 * 1024;
    if (!shared) buffer = Buffer.allocUnsafeSlow(most);
    else if (buffer === undefined || buffer.length < most) {
      buffer = Buffer.allocUnsafeSlow(Math.max(most, scratchBytes));
      this.#scratch = buffer;
    }
    let length = 0;
    for (const piece of pieces) length += buffer.write(piece, length);
    if (shared) this.#scratchBusy = true;
    try {
      await writeAll(this.#handle.fd, buffer, length);
    } finally {
      if (shared) this.#scratchBusy = false;
    }
    this.#linesWritten += lines;
  }

  /** Writes the file anew with these entries, in pieces of {@link linesPerTurn} lines, one turn each. */
  async #rewrite(state: JournalState): Promise<void> {
    const temporary = `${this.file}.tmp`;
    const handle = await open(temporary, 'w');
    const lines = state.owed.length + state.dead.length;
    try {
      let piece: string[] = [];
      const put = async (line: string): Promise<void> => {
        piece.push(line);
        if (piece.length < linesPerTurn) return;
        await handle.write(`${piece.join('\n')}\n`);
        piece = [];
      };
      for (const entry of state.owed) await put(addLine(entry));
      for (const entry of state.dead) await put(JSON.stringify({ t: 'buried', entry }));
      if (piece.length > 0) await handle.write(`${piece.join('\n')}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, this.file);
    // The old file is gone: its handle must not be written to again, even when the new one cannot be opened now
    // (later writes would go to a closed handle, or to the replaced file, and be lost); the next write opens it.
    await this.#handle?.close();
    this.#handle = undefined;
    this.#reopen = true;
    this.#linesWritten = lines;
    this.#handle = await open(this.file, 'a');
    this.#reopen = false;
  }
}
