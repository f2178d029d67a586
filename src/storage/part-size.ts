/**
 * How the parts of an S3 multipart upload grow with the upload, so an upload of unknown length (deferred
 * length, or simply large) is not capped at 10 000 parts of the first size.
 *
 * Parts 1–900 have the upload's first part size, parts 901–1800 twice it, and so on, doubling every 900
 * parts, never above S3's 5 GiB. From the smallest first size S3 allows (5 MiB), 10 000 parts then reach
 * 9.3 TiB, past S3's 5 TiB object limit; with the default 8 MiB the parts reach 5 TiB by part 9 200.
 * The layout follows from the first part's size alone, so any instance computes where part n starts.
 */

/** S3's limits. */
export const s3MaxPartSize = 5 * 1024 * 1024 * 1024;
export const s3MaxParts = 10_000;
export const s3MaxObjectSize = 5 * 1024 * 1024 * 1024 * 1024;

/** Parts at one size before the size doubles. */
export const defaultPartsPerSize = 900;

export interface PartSlot {
  /** 1-based part number. */
  readonly number: number;
  /** Offset of the part's first byte in the upload. */
  readonly start: number;
  readonly size: number;
}

/** Where every part of an upload starts and how large it is, from its first part's size. */
export class PartLayout {
  readonly firstSize: number;
  /** Parts at one size before it doubles: 900, except in tests that show the growth on a few parts. */
  readonly #partsPerSize: number;

  constructor(firstSize: number, partsPerSize = defaultPartsPerSize) {
    this.firstSize = firstSize;
    this.#partsPerSize = partsPerSize;
  }

  /** The size of part `number` (1-based). */
  sizeOf(number: number): number {
    const doublings = Math.floor((number - 1) / this.#partsPerSize);
    // 2^31 parts would be past any limit: the cap keeps the arithmetic in range.
    return Math.min(s3MaxPartSize, this.firstSize * 2 ** Math.min(doublings, 31));
  }

  /** The offset at which part `number` starts. */
  startOf(number: number): number {
    let start = 0;
    let size = this.firstSize;
    // Whole runs of equal parts first, then the parts of the last run: a few steps, whatever the number.
    for (let first = 1; first < number; first += this.#partsPerSize) {
      size = this.sizeOf(first);
      start += size * Math.min(this.#partsPerSize, number - first);
    }
    return start;
  }

  /** The part that holds the byte at `offset`. */
  partAt(offset: number): PartSlot {
    let start = 0;
    for (let first = 1; ; first += this.#partsPerSize) {
      const size = this.sizeOf(first);
      const run = size * this.#partsPerSize;
      if (offset < start + run || size === s3MaxPartSize) {
        const index = Math.floor((offset - start) / size);
        return { number: first + index, start: start + index * size, size };
      }
      start += run;
    }
  }
}
