import { setImmediate as nextTurn } from 'node:timers/promises';
import type { HookLogger } from '../hook-logger.ts';
import { entryKey, linesPerTurn, OutboxJournal, type StoredEntry } from './outbox-journal.ts';
import {
  type DeadEntry,
  type DeathNote,
  type DroppedDeadLetter,
  droppedOf,
  type OutboxStore,
  type OwedEntry,
} from './outbox-store.ts';

/**
 * Lines the journal holds at least before it is rewritten with only its live entries (and four times as many as
 * those). A busy server writes up to four lines per upload (two events, added and delivered): at 1,000 it rewrote
 * the file every 250 uploads or so, seven file system calls and an fsync each, and the live entries serialised again,
 * for a journal of a few hundred kilobytes. At 10,000 it holds about 5 MB at most, which a start replays in
 * about 0.05 s of CPU.
 */
export const compactionLines = 10_000;

/**
 * The default outbox store: an append-only journal file owned by this one process (no claims to renew or take
 * over). It keeps the owed entries and dead letters in memory too, to bound them and to compact the file now
 * and then.
 */
export class FileOutboxStore implements OutboxStore {
  readonly claimIntervalMs = undefined;
  readonly #journal: OutboxJournal;
  readonly #owed = new Map<string, StoredEntry>();
  readonly #dead = new Map<string, DeadEntry>();
  #seq = 0;
  #compacting = false;

  /** `logger` hears of a journal write that failed (its lines are written again) and of the recovery. */
  constructor(directory: string, logger?: HookLogger) {
    this.#journal = new OutboxJournal(directory);
    if (logger !== undefined)
      this.#journal.onWriteFailure = (error) => {
        if (error === undefined)
          logger.info(
            { file: this.#journal.file },
            'the outbox journal is written again after a failed write',
          );
        else
          logger.error(
            { file: this.#journal.file, error: error instanceof Error ? error.message : String(error) },
            'the outbox journal could not be written; its lines are kept in memory and written again every second',
          );
      };
  }

  get description(): string {
    return `file ${this.#journal.file}`;
  }

  async open(): Promise<OwedEntry[]> {
    const replayed = await this.#journal.open();
    const owed: OwedEntry[] = [];
    for (const entry of replayed.owed) {
      this.#owed.set(entryKey(entry.target, entry.delivery.eventId), entry);
      // Built field by field: a spread of a parsed object takes V8's slow path, once per resumed event.
      const one: { -readonly [K in keyof OwedEntry]: OwedEntry[K] } = {
        target: entry.target,
        delivery: entry.delivery,
        seq: ++this.#seq,
      };
      if (entry.addedAt !== undefined) one.addedAt = entry.addedAt;
      owed.push(one);
      if (owed.length % linesPerTurn === 0) await nextTurn();
    }
    // Oldest first, so the dead-letter limit drops from the front.
    const dead = [...replayed.dead].sort((a, b) => a.dead.deadAt - b.dead.deadAt);
    for (const entry of dead) this.#dead.set(entryKey(entry.target, entry.delivery.eventId), entry);
    return owed;
  }

  async append(entry: StoredEntry, limit: number): Promise<OwedEntry | undefined> {
    return this.appendNow(entry, limit, entryKey(entry.target, entry.delivery.eventId));
  }

  appendNow(entry: StoredEntry, limit: number, key: string): OwedEntry | undefined {
    if (this.#owed.size >= limit) return undefined;
    this.#owed.set(key, entry);
    // Queued in order; the delivered line of this entry can only be written after it.
    this.#journal.add(entry, key);
    const owed: { -readonly [K in keyof OwedEntry]: OwedEntry[K] } = {
      target: entry.target,
      delivery: entry.delivery,
      seq: ++this.#seq,
    };
    if (entry.addedAt !== undefined) owed.addedAt = entry.addedAt;
    return owed;
  }

  async remove(entry: StoredEntry): Promise<void> {
    this.removeNow(entry, entryKey(entry.target, entry.delivery.eventId));
  }

  removeNow(_entry: StoredEntry, key: string): void {
    this.#owed.delete(key);
    this.#journal.done(key);
    this.#maybeCompact();
  }

  async markDead(entry: StoredEntry, note: DeathNote, deadLimit: number): Promise<DroppedDeadLetter[]> {
    const key = entryKey(entry.target, entry.delivery.eventId);
    this.#owed.delete(key);
    this.#dead.delete(key);
    this.#dead.set(key, { ...entry, dead: note });
    this.#journal.dead(key, note);
    const dropped: DroppedDeadLetter[] = [];
    for (const oldest of this.#dead.keys()) {
      if (this.#dead.size <= deadLimit) break;
      this.#dead.delete(oldest);
      this.#journal.dropped(oldest);
      dropped.push(droppedOf(oldest));
    }
    await this.#journal.flushed();
    return dropped;
  }

  async deadLetters(): Promise<DeadEntry[]> {
    return [...this.#dead.values()];
  }

  async removeDead(target: string, eventId: string): Promise<boolean> {
    const key = entryKey(target, eventId);
    if (!this.#dead.delete(key)) return false;
    this.#journal.revived(key);
    return true;
  }

  async claim(): Promise<OwedEntry[]> {
    return [];
  }

  async pending(): Promise<StoredEntry[]> {
    await this.#journal.flushed();
    return [...this.#owed.values()];
  }

  async close(): Promise<void> {
    await this.#journal.close();
  }

  /** Keeps the journal from growing without bound: rewrite it with only the live entries now and then. */
  #maybeCompact(): void {
    const live = this.#owed.size + this.#dead.size;
    if (this.#compacting || this.#journal.lines < Math.max(compactionLines, live * 4)) return;
    this.#compacting = true;
    this.#journal
      .compact({ owed: [...this.#owed.values()], dead: [...this.#dead.values()] })
      .catch(() => undefined) // the next compaction tries again; the journal stays valid meanwhile
      .finally(() => {
        this.#compacting = false;
      });
  }
}
