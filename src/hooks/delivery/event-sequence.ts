import { OldestFirst } from '../../oldest-first.ts';
import type { HookLogger } from '../hook-logger.ts';

/**
 * Where an upload's event numbers come from. A shared outbox store (Redis, PostgreSQL) counts them for every
 * instance, atomically, and remembers each number handed out until its event is in the outbox, so that no
 * instance delivers a later event of the upload while an earlier one is still on its way into the store.
 */
export interface SequenceSource {
  /** For logs. */
  readonly description: string;
  /** The upload's next number (1 for its first event). */
  nextSequence(uploadId: string): Promise<number>;
  /** The event numbered `sequence` is in the outbox for every target it goes to (or goes to none). */
  settleSequence(uploadId: string, sequence: number): Promise<void>;
}

/**
 * How long a request waits at most for its events' numbers: a store that answers slower than that does not hold
 * the upload up any longer (those events may then be numbered after the next request's).
 */
export const numberWaitMs = 2000;

/** Uploads whose count a lone process keeps in memory; beyond it the least recently numbered are forgotten. */
const rememberedUploads = 100_000;

/**
 * Numbers each upload's post events 1, 2, 3... and hands them out per upload in the order they were asked
 * for, so one instance's events of an upload keep their order while a shared store answers. Without a shared
 * store the count lives in this process's memory and is given at once (the event is not delayed).
 */
export class UploadSequencer {
  readonly #source: SequenceSource | undefined;
  readonly #logger: HookLogger;
  readonly #counts = new Map<string, number>();
  /** Forgets the least recently numbered upload (one kept iterator: see OldestFirst). */
  readonly #oldest = new OldestFirst(this.#counts);
  /** Uploads remembered at most (100,000; tests set fewer). */
  readonly #remembered: number;
  /** Per upload: the last numbering still running on this instance (events wait for the one before). */
  readonly #tails = new Map<string, Promise<void>>();
  /** Per upload: resolves once the last event asked for has its number (and the store its mark). */
  readonly #assigned = new Map<string, Promise<unknown>>();
  #running = 0;
  #idleWaiters: (() => void)[] = [];
  #failedAt = 0;

  constructor(source: SequenceSource | undefined, logger: HookLogger, remembered = rememberedUploads) {
    this.#source = source;
    this.#logger = logger;
    this.#remembered = remembered;
  }

  /**
   * The number a lone process gives at once (no shared store: counted in memory), or undefined when a shared
   * store counts and {@link UploadSequencer.number} must be used. Spares the caller the promises that wait for a
   * store's answer (they cost every event, and a process without a shared store has nothing to wait for).
   */
  numberNow(uploadId: string): number | undefined {
    return this.#source === undefined ? this.#countInMemory(uploadId) : undefined;
  }

  /**
   * Calls `use` with the upload's next number (undefined when the shared store could not give one), after
   * the previous event of this upload on this instance was handled. `use` resolves once the event is in the
   * outbox; then the store forgets the number was pending.
   */
  number(uploadId: string, use: (sequence: number | undefined) => Promise<unknown> | undefined): void {
    const source = this.#source;
    if (source === undefined) {
      void use(this.#countInMemory(uploadId));
      return;
    }
    this.#running += 1;
    // Numbers are asked for one after the other (a pool of connections could reorder them); each event is
    // handed on after the previous one of its upload was, so this instance stores them in order too.
    const previousNumber = this.#assigned.get(uploadId) ?? Promise.resolve();
    const previousTail = this.#tails.get(uploadId) ?? Promise.resolve();
    const assigned = previousNumber
      .then(() => source.nextSequence(uploadId))
      .then(
        (sequence) => sequence,
        (error: unknown) => {
          this.#warn(source, error);
          return undefined;
        },
      );
    this.#assigned.set(uploadId, assigned);
    const tail = Promise.all([assigned, previousTail])
      .then(async ([sequence]) => {
        await use(sequence);
        if (sequence !== undefined) {
          await source
            .settleSequence(uploadId, sequence)
            .catch((error: unknown) => this.#warn(source, error));
        }
      })
      .catch(() => undefined)
      .finally(() => {
        if (this.#tails.get(uploadId) === tail) this.#tails.delete(uploadId);
        if (this.#assigned.get(uploadId) === assigned) this.#assigned.delete(uploadId);
        this.#running -= 1;
        if (this.#running === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      });
    this.#tails.set(uploadId, tail);
  }

  /**
   * Resolves once every event of the upload asked for so far has its number and, with a shared store, the
   * store's mark that it is on its way: from then on no instance sends a later event of the upload before it.
   * The request that caused the events waits for this before it lets go of the upload (one store round trip).
   */
  numbered(uploadId: string): Promise<void> {
    const assigned = this.#assigned.get(uploadId);
    if (assigned === undefined) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, numberWaitMs);
    });
    return Promise.race([assigned.then(() => undefined), late]).finally(() => clearTimeout(timer));
  }

  /** Resolves when every event asked to be numbered has been handed on. */
  idle(): Promise<void> {
    if (this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #countInMemory(uploadId: string): number {
    const counts = this.#counts;
    const next = (counts.get(uploadId) ?? 0) + 1;
    // Re-inserted so the Map's order is least recently numbered first.
    counts.delete(uploadId);
    counts.set(uploadId, next);
    if (counts.size > this.#remembered) this.#oldest.evict();
    return next;
  }

  #warn(source: SequenceSource, error: unknown): void {
    // Once a second at most: a store that is down would otherwise log every event.
    const now = Date.now();
    if (now - this.#failedAt < 1000) return;
    this.#failedAt = now;
    this.#logger.warn(
      { store: source.description, error: String(error) },
      'hook outbox store unreachable; events sent without their upload sequence number, maybe out of order',
    );
  }
}
