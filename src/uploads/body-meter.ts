import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { WharfError } from '../errors.ts';
import { type BodyYoungCollector, bodyYoungCollector } from './body-young-gc.ts';

/**
 * How a body gives way to a request that waits for its upload's lock. A client that reconnects at once (HEAD, then
 * PATCH) finds its old connection's last bytes still unread in the server's socket, the old client gone: those bytes
 * are read and kept before the lock passes on. Reading stops once the body has brought nothing for `quietMs` while
 * the meter let it flow (a stale connection that sends nothing gives way at once), and after `maxMs` in any case (a
 * live client still sending on the old connection is cut off, as before).
 */
export const GIVE_WAY = { quietMs: 20, maxMs: 500 } as const;

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
  /** While giving way ({@link giveWay}): checks every quiet period whether the body still brings bytes. */
  #giveWayTimer: NodeJS.Timeout | undefined;
  /** Frees dead chunk buffers by minor collections (the process's shared one unless given). */
  readonly #youngCollector: BodyYoungCollector | undefined;
  /** This body is counted among the collector's streaming bodies (from drawFrom to its end). */
  #streaming = false;

  constructor(options: {
    limit: number;
    limitError: () => WharfError;
    checksumAlgorithm?: string | undefined;
    minimumRate?: MinimumRate | undefined;
    youngCollector?: BodyYoungCollector | undefined;
  }) {
    // 0: push() asks for a pause as soon as one chunk waits, so at most one chunk is held here.
    super({ highWaterMark: 0 });
    this.#limit = options.limit;
    this.#limitError = options.limitError;
    this.#hash = options.checksumAlgorithm ? createHash(options.checksumAlgorithm) : undefined;
    const rate = options.minimumRate;
    this.#minimumRate = rate !== undefined && rate.bytesPerSecond > 0 && rate.windowMs > 0 ? rate : undefined;
    this.#youngCollector = options.youngCollector ?? bodyYoungCollector();
  }

  /** Starts reading `upstream` into this meter. */
  drawFrom(upstream: Readable): void {
    if (this.interruption) return;
    this.#upstream = upstream;
    this.#startStreaming();
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

  /**
   * Ends the body soon, for a request that waits for the upload's lock: first reads what keeps arriving without
   * a pause (the bytes a gone client left in the socket), then interrupts with `reason`. See {@link GIVE_WAY}.
   */
  giveWay(reason: WharfError): void {
    if (this.interruption || this.#ended || this.#giveWayTimer !== undefined) return;
    if (this.#upstream === undefined) {
      this.interrupt(reason);
      return;
    }
    const askedAt = performance.now();
    let seen = this.bytesSeen;
    let confirming = false;
    this.#giveWayTimer = setInterval(() => {
      if (this.#ended || confirming) return;
      if (performance.now() - askedAt >= GIVE_WAY.maxMs) {
        this.interrupt(reason);
        return;
      }
      const quiet = this.bytesSeen === seen && this.#pausedAt === undefined;
      seen = this.bytesSeen;
      if (!quiet) return;
      // A timer can run before the event loop polls sockets that became readable while it was busy: the body is
      // quiet only if a poll that follows brought nothing either.
      confirming = true;
      setImmediate(() => {
        confirming = false;
        if (this.bytesSeen === seen && this.#pausedAt === undefined) this.interrupt(reason);
        seen = this.bytesSeen;
      });
    }, GIVE_WAY.quietMs);
  }

  /** The digest of every byte that passed, or undefined when no checksum was requested. */
  digest(): Buffer | undefined {
    return this.#hash?.digest();
  }

  readonly #onData = (chunk: Buffer): void => {
    this.bytesSeen += chunk.length;
    this.#youngCollector?.received(chunk.length);
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
    clearInterval(this.#giveWayTimer);
    this.#stopStreaming();
    callback(error);
  }

  #startStreaming(): void {
    if (this.#streaming || this.#ended) return;
    this.#streaming = true;
    this.#youngCollector?.bodyStarted();
  }

  #stopStreaming(): void {
    if (!this.#streaming) return;
    this.#streaming = false;
    this.#youngCollector?.bodyEnded();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearInterval(this.#rateTimer);
    clearInterval(this.#giveWayTimer);
    this.#stopStreaming();
    const upstream = this.#upstream;
    if (upstream !== undefined) {
      upstream.off('data', this.#onData);
      upstream.off('end', this.#onEnd);
      upstream.pause();
    }
    this.push(null);
  }
}
