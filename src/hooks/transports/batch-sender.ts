/**
 * Group commit for a transport whose target takes many messages in one request (Kafka's produce request).
 * Sending each hook event on its own cost Wharf about 1.3 ms of CPU per event with kafkajs, plus one broker
 * request each; events that arrive while a batch is on its way wait and leave together in the next one. With no
 * linger an idle transport sends at once; with one, an item waits at most the linger for company (the time it
 * waited behind a batch on its way counts). A busy one sends fewer, larger requests, and batches leave in the
 * order their items arrived.
 */
export interface BatchSenderOptions<T> {
  /** Sends one batch; resolves once the target accepted every item of it. */
  readonly sendBatch: (items: readonly T[]) => Promise<void>;
  /** The size an item counts for against `maxBytes`. */
  readonly sizeOf: (item: T) => number;
  /** At most this many items in one batch. */
  readonly maxItems: number;
  /** A batch stops growing at this many bytes (an item larger than this goes alone). */
  readonly maxBytes: number;
  /**
   * How long an item may wait for company before its batch leaves (librdkafka's linger.ms), counted from its
   * arrival, time spent waiting behind a batch on its way included; 0: no wait.
   */
  readonly lingerMs: number;
  /**
   * Whether a failed batch may have failed for one of its items (the target refused a record) rather than for
   * all of them (the target is down). Only then is each item sent again alone.
   */
  readonly mayBeOneItem: (error: unknown) => boolean;
}

/** What says an item was given up on: an AbortSignal, or any object with the same two fields. */
export interface GiveUpSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
}

interface Waiting<T> {
  readonly item: T;
  /** When it arrived (`performance.now()`), with a linger; 0 without. */
  readonly since: number;
  readonly signal: GiveUpSignal | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class BatchSender<T> {
  readonly #options: BatchSenderOptions<T>;
  #waiting: Waiting<T>[] = [];
  #sending = false;
  #lingerTimer: NodeJS.Timeout | undefined;
  #lingerOver = false;

  constructor(options: BatchSenderOptions<T>) {
    if (options.maxItems < 1) throw new RangeError('a batch must hold at least one item');
    this.#options = options;
  }

  /**
   * Resolves when the batch that carried `item` was accepted; rejects with the failure of `item` alone. An item
   * whose `signal` is aborted before its batch leaves is not sent (its sender gave up on it: timed out, or the
   * engine closed) and rejects with the signal's reason; otherwise a target that hangs would leave every
   * abandoned item to be sent later, beside the retries of the same events.
   */
  send(item: T, signal?: GiveUpSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const since = this.#options.lingerMs > 0 ? performance.now() : 0;
      this.#waiting.push({ item, since, signal, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#sending || this.#waiting.length === 0) return;
    const lingerMs = this.#options.lingerMs;
    if (lingerMs > 0 && !this.#lingerOver && this.#waiting.length < this.#options.maxItems) {
      // The oldest item's linger: one that waited behind the last batch leaves with the next one at once.
      const left = (this.#waiting[0] as Waiting<T>).since + lingerMs - performance.now();
      if (left > 0) {
        this.#lingerTimer ??= setTimeout(() => {
          this.#lingerTimer = undefined;
          this.#lingerOver = true;
          this.#pump();
        }, left);
        return;
      }
    }
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    this.#lingerOver = false;
    const batch = this.#takeBatch();
    if (batch.length === 0) return; // every waiting item had been given up
    this.#sending = true;
    void this.#send(batch).finally(() => {
      this.#sending = false;
      this.#pump();
    });
  }

  #takeBatch(): Waiting<T>[] {
    const batch: Waiting<T>[] = [];
    let bytes = 0;
    let taken = 0;
    for (const waiting of this.#waiting) {
      if (waiting.signal?.aborted) {
        waiting.reject(waiting.signal.reason);
        taken += 1;
        continue;
      }
      const size = this.#options.sizeOf(waiting.item);
      if (
        batch.length === this.#options.maxItems ||
        (batch.length > 0 && bytes + size > this.#options.maxBytes)
      ) {
        break;
      }
      batch.push(waiting);
      bytes += size;
      taken += 1;
    }
    this.#waiting.splice(0, taken);
    return batch;
  }

  async #send(batch: readonly Waiting<T>[]): Promise<void> {
    try {
      await this.#options.sendBatch(batch.map((waiting) => waiting.item));
      for (const waiting of batch) waiting.resolve();
    } catch (error) {
      if (batch.length === 1 || !this.#options.mayBeOneItem(error)) {
        for (const waiting of batch) waiting.reject(error);
        return;
      }
      // One item the target refuses (too large, say) must not fail the others with it: each goes again alone,
      // one after another, so that every item gets its own outcome and the order still holds.
      for (const waiting of batch) {
        try {
          await this.#options.sendBatch([waiting.item]);
          waiting.resolve();
        } catch (alone) {
          waiting.reject(alone);
        }
      }
    }
  }
}
