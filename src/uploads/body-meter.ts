import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { WharfError } from '../errors.ts';

/** The slowest a body may arrive: fewer than `bytesPerSecond` over a window of `windowMs` ends it. */
export interface MinimumRate {
  readonly bytesPerSecond: number;
  readonly windowMs: number;
  /** Why the body was ended (kept bytes, a retryable answer). */
  readonly error: () => WharfError;
}

/**
 * The one stage every request body passes through on its way to a DataStore: it counts bytes, feeds the
 * checksum, enforces the byte limit, and can be interrupted (client gone, lock takeover, stall, shutdown)
 * so that the store keeps every byte it already received and the caller learns why the body stopped.
 *
 * It reads its upstream itself and hands each chunk on as it comes, rather than being a Transform piped to:
 * a Transform buffers up to its high-water mark on both of its sides, and with 200 uploads at once those
 * buffers held more memory than the writes to disk. Here a chunk waits only while the store is not reading,
 * and then the upstream pauses.
 */
export class BodyMeter extends Readable {
  bytesSeen = 0;
  /** Why the body stopped before its end, if it did. */
  interruption: WharfError | undefined;
  readonly #limit: number;
  readonly #limitError: () => WharfError;
  readonly #hash: Hash | undefined;
  readonly #minimumRate: MinimumRate | undefined;
  #upstream: Readable | undefined;
  /** The end was pushed (upstream ended or the meter was interrupted). */
  #ended = false;
  /** Checks the rate once per window: one timer per body, nothing per chunk. */
  #rateTimer: NodeJS.Timeout | undefined;
  /** bytesSeen when the current window began. */
  #windowStartBytes = 0;
  /** When the current window began (performance.now()). */
  #windowStartedAt = 0;
  /** Milliseconds of the current window during which the meter held the upstream paused. */
  #heldBackMs = 0;
  /** When the upstream was paused by the meter (performance.now()); undefined while it flows. */
  #pausedAt: number | undefined;
  /** A window has ended already (the first one is not judged). */
  #judged = false;

  constructor(options: {
    limit: number;
    limitError: () => WharfError;
    checksumAlgorithm?: string | undefined;
    minimumRate?: MinimumRate | undefined;
  }) {
    // 0: push() asks for a pause as soon as one chunk waits, so at most one chunk is held here.
    super({ highWaterMark: 0 });
    this.#limit = options.limit;
    this.#limitError = options.limitError;
    this.#hash = options.checksumAlgorithm ? createHash(options.checksumAlgorithm) : undefined;
    const rate = options.minimumRate;
    this.#minimumRate = rate !== undefined && rate.bytesPerSecond > 0 && rate.windowMs > 0 ? rate : undefined;
  }

  /** Starts reading `upstream` into this meter. */
  drawFrom(upstream: Readable): void {
    if (this.interruption) return;
    this.#upstream = upstream;
    upstream.on('data', this.#onData);
    upstream.once('end', this.#onEnd);
    if (this.#minimumRate !== undefined && !this.#ended) {
      this.#windowStartedAt = performance.now();
      this.#rateTimer = setInterval(this.#checkRate, this.#minimumRate.windowMs);
      this.#rateTimer.unref();
    }
  }

  override _read(): void {
    if (this.#pausedAt !== undefined) {
      this.#heldBackMs += performance.now() - this.#pausedAt;
      this.#pausedAt = undefined;
    }
    this.#upstream?.resume();
  }

  /** Stops reading: what already passed the meter is still delivered, then the meter ends. */
  interrupt(reason: WharfError): void {
    if (this.interruption || this.#ended) return;
    this.interruption = reason;
    this.#end();
  }

  /** The digest of every byte that passed, or undefined when no checksum was requested. */
  digest(): Buffer | undefined {
    return this.#hash?.digest();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.bytesSeen += chunk.length;
    if (this.bytesSeen > this.#limit) {
      this.interrupt(this.#limitError());
      return;
    }
    this.#hash?.update(chunk);
    if (!this.push(chunk)) {
      this.#pausedAt ??= performance.now();
      this.#upstream?.pause();
    }
  };

  /**
   * At the end of each window: a body that brought fewer bytes than the minimum rate asks for is ended like a
   * stalled one. Only the time the upstream flowed counts: while the store is slow to take a chunk the meter
   * pauses the client, and that time is the server's, not the client's.
   */
  readonly #checkRate = (): void => {
    const rate = this.#minimumRate;
    if (rate === undefined || this.#ended) return;
    const now = performance.now();
    if (this.#pausedAt !== undefined) {
      this.#heldBackMs += now - this.#pausedAt;
      this.#pausedAt = now;
    }
    const flowingMs = Math.max(0, now - this.#windowStartedAt - this.#heldBackMs);
    const received = this.bytesSeen - this.#windowStartBytes;
    this.#windowStartBytes = this.bytesSeen;
    this.#windowStartedAt = now;
    this.#heldBackMs = 0;
    // The first window is a grace period: a body that stops dead there is the socket idle timer's (a stall),
    // and a slow start (a client ramping up) is forgiven once. A window the server spent mostly holding the
    // body back says nothing about the client.
    const first = !this.#judged;
    this.#judged = true;
    if (first || flowingMs < rate.windowMs / 2) return;
    if (received < (rate.bytesPerSecond * flowingMs) / 1000) this.interrupt(rate.error());
  };

  readonly #onEnd = (): void => {
    this.#end();
  };

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearInterval(this.#rateTimer);
    callback(error);
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#rateTimer);
    const upstream = this.#upstream;
    if (upstream !== undefined) {
      upstream.off('data', this.#onData);
      upstream.off('end', this.#onEnd);
      upstream.pause();
    }
    this.push(null);
  }
}
