import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import type {
  AppendResult,
  ByteRange,
  ConcatenatingDataStore,
  FinishingDataStore,
  NewUploadPlacement,
  RecordCopyingDataStore,
  StoredData,
} from './data-store.ts';
import { fixedDirPrefix, layoutPattern, uploadLocation } from './dir-structure.ts';
import { composeLimit, type GcsBucket, type GcsObject } from './gcs-bucket.ts';
import { PartFile } from './part-file.ts';
import { PartUploads } from './part-uploads.ts';
import { gcsRecordBucket, RecordCopyObjects } from './record-copy-objects.ts';

export interface GcsDataStoreOptions {
  readonly bucket: GcsBucket;
  /** Prepended to every object name, e.g. `uploads/`. */
  readonly prefix: string;
  /** Largest piece object an append writes; a body is cut into pieces of this size. */
  readonly pieceSize: number;
  /** Pieces of one append sent at the same time (each waits in its own temporary file). */
  readonly pieceConcurrency: number;
  readonly bufferDir: string | undefined;
  readonly dirStructure: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Where an unfinished upload's bytes wait, one object per piece, named by the offset of its first byte. */
const pieceFolder = '.wharf-pieces';
/** Piece names carry their start offset zero-padded, so a listing returns them in order. */
const offsetDigits = 16;

interface Piece extends GcsObject {
  readonly start: number;
}

/** Splits `items` into runs of at most `size`. */
function runs<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let index = 0; index < items.length; index += size) result.push(items.slice(index, index + size));
  return result;
}

/**
 * Upload bytes in Google Cloud Storage.
 *
 * An unfinished upload is a run of piece objects `<prefix>.wharf-pieces/<location>/<start offset>`: each
 * append writes its body as pieces of at most --gcs-part-size (gathered on disk, a few sent at once), and
 * finishing composes them, 32 at a time, into the upload's object, then removes them. Everything lives in
 * the bucket, so any instance continues any upload, and a restart loses nothing.
 *
 * The caller's offset is the truth: an append first drops pieces that start at or past its offset and cuts
 * the piece that straddles it (a rewrite of at most one piece), so bytes past the record never end up in the
 * upload. Resumable-upload sessions are not used: they cannot go back to an earlier offset, and they live
 * in one session URI rather than in objects any instance can list.
 */
export class GcsDataStore implements ConcatenatingDataStore, FinishingDataStore, RecordCopyingDataStore {
  readonly name = 'gcs';
  readonly #options: GcsDataStoreOptions;
  readonly #bufferDir: string;
  readonly #copies: RecordCopyObjects;

  constructor(options: GcsDataStoreOptions) {
    this.#options = options;
    this.#bufferDir = options.bufferDir ?? tmpdir();
    this.#copies = new RecordCopyObjects(gcsRecordBucket(options.bucket), options.prefix);
  }

  /** The store's backend: /health reports it and shutdown closes it. */
  get backend(): GcsBucket {
    return this.#options.bucket;
  }

  get #bucket(): GcsBucket {
    return this.#options.bucket;
  }

  async prepare(): Promise<void> {
    await this.#bucket.connect();
  }

  async create(placement: NewUploadPlacement): Promise<string> {
    // Nothing is stored yet: the first append writes the first piece.
    return uploadLocation(this.#options.dirStructure, placement.createdAt, this.#options.env, placement.id);
  }

  #key(location: string): string {
    return `${this.#options.prefix}${location}`;
  }

  #pieceFolder(location: string): string {
    return `${this.#options.prefix}${pieceFolder}/${location}/`;
  }

  #pieceName(location: string, start: number): string {
    return `${this.#pieceFolder(location)}${String(start).padStart(offsetDigits, '0')}`;
  }

  describe(location: string): string {
    return this.#key(location);
  }

  /** The upload's pieces in offset order (compose scratch objects are left out). */
  async #pieces(location: string): Promise<Piece[]> {
    const folder = this.#pieceFolder(location);
    const pieces: Piece[] = [];
    for (const object of await this.#bucket.list(folder)) {
      const rest = object.name.slice(folder.length);
      if (/^\d+$/.test(rest)) pieces.push({ ...object, start: Number(rest) });
    }
    return pieces.sort((a, b) => a.start - b.start);
  }

  /**
   * Makes the pieces hold exactly the bytes [0, offset): pieces from `offset` on are removed, and the one
   * that straddles it is rewritten with its first part. Returns the pieces kept, in order.
   */
  async #cut(location: string, offset: number): Promise<Piece[]> {
    const pieces = await this.#pieces(location);
    const kept: Piece[] = [];
    let covered = 0;
    for (const piece of pieces) {
      if (piece.start >= offset) {
        await this.#bucket.remove(piece.name);
        continue;
      }
      if (piece.start !== covered) {
        throw new Error(
          `GCS upload ${location} has no bytes at ${covered} (next piece starts at ${piece.start})`,
        );
      }
      covered = piece.start + piece.size;
      kept.push(piece);
    }
    if (covered < offset) {
      throw new Error(`GCS upload ${location} holds ${covered} bytes where the offset needs ${offset}`);
    }
    const last = kept.at(-1);
    if (last && covered > offset) {
      const length = offset - last.start;
      const part = await PartFile.create(this.#bufferDir);
      try {
        const got = await part.writeFrom(await this.#bucket.read(last.name, { start: 0, end: length - 1 }));
        if (got !== length) throw new Error(`GCS piece ${last.name} gave ${got} of ${length} bytes`);
        await part.close();
        await this.#bucket.putFile(last.name, part.path, length);
      } finally {
        await part.remove();
      }
      kept[kept.length - 1] = { ...last, size: length };
    }
    return kept;
  }

  async append(location: string, offset: number, source: Readable): Promise<AppendResult> {
    let part: PartFile | undefined;
    try {
      await this.#cut(location, offset);
      const { pieceSize } = this.#options;
      const uploads = new PartUploads(this.#options.pieceConcurrency);
      /** The start offset of each piece handed to `uploads`, by its number there (1, 2, ...). */
      const starts: number[] = [];
      let start = offset;
      const send = async (full: PartFile): Promise<void> => {
        const name = this.#pieceName(location, start);
        const size = full.size;
        const number = starts.push(start);
        start += size;
        await full.close();
        await uploads.add(number, async () => {
          try {
            await this.#bucket.putFile(name, full.path, size);
            return { partNumber: number, size, etag: '' };
          } finally {
            await full.remove();
          }
        });
      };
      let failure: unknown;
      part = await PartFile.create(this.#bufferDir);
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          let rest = chunk;
          while (rest.length > 0) {
            const piece = rest.subarray(0, pieceSize - part.size);
            rest = rest.subarray(piece.length);
            await part.write(piece);
            if (part.size < pieceSize) continue;
            const full = part;
            part = await PartFile.create(this.#bufferDir);
            await send(full);
            if (uploads.failure) throw uploads.failure.error;
          }
        }
      } catch (error) {
        failure = error;
      }
      // What arrived before a failed body is kept, as the file store keeps it.
      if (part.size > 0 && !uploads.failure) {
        const last = part;
        part = undefined;
        await send(last);
      }
      await uploads.settle();
      let durable = start;
      if (uploads.failure) {
        // Pieces past the one that failed are never used: the next append cuts them.
        failure ??= uploads.failure.error;
        durable = starts[uploads.failure.partNumber - 1] ?? offset;
      }
      const bytesWritten = Math.max(0, durable - offset);
      return failure === undefined ? { bytesWritten } : { bytesWritten, error: failure };
    } catch (error) {
      return { bytesWritten: 0, error };
    } finally {
      await part?.remove();
    }
  }

  async truncate(location: string, length: number): Promise<void> {
    await this.#cut(location, length);
  }

  /** Composes objects, in order, into `target`, through scratch objects under `scratch` when there are many. */
  async #composeAll(names: readonly string[], target: string, scratch: string): Promise<void> {
    let current = [...names];
    for (let round = 0; current.length > composeLimit; round++) {
      const next: string[] = [];
      for (const [index, run] of runs(current, composeLimit).entries()) {
        const name = `${scratch}compose-${round}-${index}`;
        await this.#bucket.compose(run, name);
        next.push(name);
      }
      current = next;
    }
    await this.#bucket.compose(current, target);
  }

  async #removeFolder(folder: string): Promise<void> {
    for (const object of await this.#bucket.list(folder)) await this.#bucket.remove(object.name);
  }

  /** Composes the pieces below `length` into the upload's object, then removes them. */
  async finish(location: string, length: number): Promise<void> {
    const key = this.#key(location);
    const folder = this.#pieceFolder(location);
    if ((await this.#pieces(location)).length === 0 && (await this.#bucket.size(key)) === length) {
      // Already finished (a retry after the pieces could not be removed).
      return;
    }
    const pieces = await this.#cut(location, length);
    if (pieces.length === 0) await this.#bucket.putEmpty(key);
    else
      await this.#composeAll(
        pieces.map((piece) => piece.name),
        key,
        folder,
      );
    await this.#removeFolder(folder);
  }

  /** The upload's object exists only once finish composed it. */
  async isFinished(location: string, length: number): Promise<boolean> {
    return (await this.#bucket.size(this.#key(location))) === length;
  }

  async read(location: string, range?: ByteRange): Promise<Readable> {
    return this.#bucket.read(this.#key(location), range);
  }

  async remove(location: string): Promise<void> {
    await this.#removeFolder(this.#pieceFolder(location));
    await this.#bucket.remove(this.#key(location));
  }

  /** The object once finished; before, the pieces that follow each other from 0. */
  async stored(location: string): Promise<StoredData> {
    const object = await this.#bucket.stat(this.#key(location));
    if (object) return { length: object.size, modifiedAt: object.modifiedAt };
    let length = 0;
    let modifiedAt: number | undefined;
    for (const piece of await this.#pieces(location)) {
      if (piece.start !== length) break;
      length += piece.size;
      modifiedAt = Math.max(modifiedAt ?? 0, piece.modifiedAt);
    }
    return { length, modifiedAt };
  }

  async *storedLocations(): AsyncIterable<{ location: string; modifiedAt: number }> {
    const fixed = fixedDirPrefix(this.#options.dirStructure);
    const { pattern } = layoutPattern(this.#options.dirStructure);
    const under = fixed === '' ? '' : `${fixed}/`;
    const { prefix } = this.#options;
    for (const object of await this.#bucket.list(`${prefix}${under}`)) {
      const location = object.name.slice(prefix.length);
      if (!location.startsWith('.wharf-') && pattern.test(location)) {
        yield { location, modifiedAt: object.modifiedAt };
      }
    }
    const pieces = `${prefix}${pieceFolder}/`;
    for (const object of await this.#bucket.list(`${pieces}${under}`)) {
      const location = object.name.slice(pieces.length, object.name.lastIndexOf('/'));
      if (pattern.test(location)) yield { location, modifiedAt: object.modifiedAt };
    }
  }

  writeRecordCopy(id: string, copy: string): Promise<void> {
    return this.#copies.write(id, copy);
  }

  readRecordCopy(id: string): Promise<string | undefined> {
    return this.#copies.read(id);
  }

  removeRecordCopy(id: string): Promise<void> {
    return this.#copies.remove(id);
  }

  recordCopies(): AsyncIterable<string> {
    return this.#copies.ids();
  }

  /** Composes the sources' objects server-side; no byte passes through this process. */
  async concatenate(target: string, sources: readonly { location: string; length: number }[]): Promise<void> {
    const names = sources.filter((source) => source.length > 0).map((source) => this.#key(source.location));
    const key = this.#key(target);
    const folder = this.#pieceFolder(target);
    if (names.length === 0) await this.#bucket.putEmpty(key);
    else await this.#composeAll(names, key, folder);
    await this.#removeFolder(folder);
  }
}
