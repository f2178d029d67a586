import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { WharfError } from '../errors.ts';

/**
 * The one stage every request body passes through on its way to a DataStore: it counts bytes, feeds the
 * checksum, enforces the byte limit, and can be interrupted (client gone, lock takeover, stall, shutdown)
 * so that the store keeps every byte it already received and the caller learns why the body stopped.
 */
export class BodyMeter extends Transform {
  bytesSeen = 0;
  /** Why the body stopped before its end, if it did. */
  interruption: WharfError | undefined;
  readonly #limit: number;
  readonly #limitError: () => WharfError;
  readonly #hash: Hash | undefined;
  #upstream: NodeJS.ReadableStream | undefined;

  constructor(options: {
    limit: number;
    limitError: () => WharfError;
    checksumAlgorithm?: string | undefined;
  }) {
    super({ highWaterMark: 64 * 1024 });
    this.#limit = options.limit;
    this.#limitError = options.limitError;
    this.#hash = options.checksumAlgorithm ? createHash(options.checksumAlgorithm) : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytesSeen += chunk.length;
    if (this.bytesSeen > this.#limit) {
      this.interrupt(this.#limitError());
      callback();
      return;
    }
    this.#hash?.update(chunk);
    callback(null, chunk);
  }

  /** Starts reading `upstream` into this meter. */
  drawFrom(upstream: NodeJS.ReadableStream): void {
    this.#upstream = upstream;
    upstream.pipe(this);
  }

  /** Stops reading: what already passed the meter is still delivered, then the meter ends. */
  interrupt(reason: WharfError): void {
    if (this.interruption || this.writableEnded) return;
    this.interruption = reason;
    this.#upstream?.unpipe(this);
    this.end();
  }

  /** The digest of every byte that passed, or undefined when no checksum was requested. */
  digest(): Buffer | undefined {
    return this.#hash?.digest();
  }
}
