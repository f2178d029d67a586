import type { StoredPart } from './s3-bucket.ts';

/**
 * Parts of one multipart upload in flight, at most `limit` at once. Adding a part waits for room, which is
 * what slows the request body down (backpressure) while S3 catches up.
 */
export class PartUploads {
  readonly #limit: number;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #done: StoredPart[] = [];
  #failure: { partNumber: number; error: unknown } | undefined;

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  async add(partNumber: number, send: () => Promise<StoredPart>): Promise<void> {
    while (this.#inFlight.size >= this.#limit) await Promise.race(this.#inFlight);
    const running: Promise<void> = send().then(
      (part) => {
        this.#done.push(part);
      },
      (error: unknown) => {
        if (!this.#failure || partNumber < this.#failure.partNumber) this.#failure = { partNumber, error };
      },
    );
    const tracked = running.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  /** The lowest-numbered part that failed, if any did. */
  get failure(): { readonly partNumber: number; readonly error: unknown } | undefined {
    return this.#failure;
  }

  /** Waits for every part in flight; never rejects (see {@link failure}). */
  async settle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
  }

  /** Every part sent successfully, in part-number order. */
  get parts(): StoredPart[] {
    return [...this.#done].sort((a, b) => a.partNumber - b.partNumber);
  }
}
