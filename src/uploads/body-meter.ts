import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { WharfError } from '../errors.ts';

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
  #upstream: Readable | undefined;
  /** The end was pushed (upstream ended or the meter was interrupted). */
  #ended = false;

  constructor(options: {
    limit: number;
    limitError: () => WharfError;
    checksumAlgorithm?: string | undefined;
  }) {
    // 0: push() asks for a pause as soon as one chunk waits, so at most one chunk is held here.
    super({ highWaterMark: 0 });
    this.#limit = options.limit;
    this.#limitError = options.limitError;
    this.#hash = options.checksumAlgorithm ? createHash(options.checksumAlgorithm) : undefined;
  }

  /** Starts reading `upstream` into this meter. */
  drawFrom(upstream: Readable): void {
    if (this.interruption) return;
    this.#upstream = upstream;
    upstream.on('data', this.#onData);
    upstream.once('end', this.#onEnd);
  }

  override _read(): void {
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
    if (!this.push(chunk)) this.#upstream?.pause();
  };

  readonly #onEnd = (): void => {
    this.#end();
  };

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const upstream = this.#upstream;
    if (upstream !== undefined) {
      upstream.off('data', this.#onData);
      upstream.off('end', this.#onEnd);
      upstream.pause();
    }
    this.push(null);
  }
}
