import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { BucketHandle } from './bucket-handle.ts';
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
import { PartFile } from './part-file.ts';
import { PartLayout } from './part-size.ts';
import { PartUploads } from './part-uploads.ts';
import { RecordCopyObjects, s3RecordBucket } from './record-copy-objects.ts';
import type { S3Bucket, S3Connection, StoredPart } from './s3-bucket.ts';
import { concatenateObjects, type PartTuning } from './s3-objects.ts';
import { type RebuildLayout, type Rebuilt, rebuildAt } from './s3-rebuild.ts';

export interface S3DataStoreOptions {
  readonly connection: S3Connection;
  readonly partSize: number;
  readonly partConcurrency: number;
  readonly concatConcurrency: number;
  readonly bufferDir: string | undefined;
  readonly dirStructure: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Parts at one size before it doubles (part-size.ts); only tests set it, to see growth on a few parts. */
  readonly partsPerSize?: number;
}

/** Where the bytes of an unfinished upload that do not fill a part wait, one object per part start. */
const tailFolder = '.wharf-tails';

function tailPrefix(key: string): string {
  return `${tailFolder}/${key}/`;
}

function tailKey(key: string, partStart: number): string {
  return `${tailPrefix(key)}${partStart}`;
}

/** A tail this instance wrote, still on its disk: the next PATCH reuses it if the object's ETag still matches. */
interface LocalTail {
  readonly partStart: number;
  readonly size: number;
  readonly etag: string;
  readonly path: string;
  /** The layout the append that wrote it used. */
  readonly partSize: number;
  readonly uploadId: string | undefined;
  /** The tail that append started from and consumed into a part: left for the next append to delete. */
  readonly consumedTail: number | undefined;
}

/** Local tails kept at most (each up to one part on disk); the oldest goes first. */
const localTailLimit = 16;

/**
 * Upload bytes straight into an S3 multipart upload on the upload's own key.
 *
 * Everything needed to continue an upload lives in the bucket, so any instance can take over:
 * - the multipart upload is found with ListMultipartUploads on the key (created when the first part is due);
 * - parts all have the same size (part 1's size, from ListParts), so part n holds bytes
 *   [(n-1)·size, n·size) and its number follows from the offset;
 * - the bytes after the last full part wait in a tail object `.wharf-tails/<key>/<part start>` until the
 *   next PATCH completes the part (or the upload finishes and the tail is copied in as the last part).
 *
 * The caller's offset is the truth: bytes past it (a discarded chunk) are simply never used. An append
 * never modifies the bytes below its offset: a tail is only ever rewritten with the same prefix plus more,
 * and a part above the offset is overwritten by number, so cutting back to where an append started always
 * finds the state it started from.
 */
export class S3DataStore implements ConcatenatingDataStore, FinishingDataStore, RecordCopyingDataStore {
  readonly name = 's3';
  readonly #options: S3DataStoreOptions;
  readonly #tuning: PartTuning;
  readonly #localTails = new Map<string, LocalTail>();
  readonly #copies = new RecordCopyObjects(s3RecordBucket(() => this.#bucket));

  constructor(options: S3DataStoreOptions) {
    this.#options = options;
    this.backend = new BucketHandle(options.connection, 'S3 storage');
    this.#tuning = {
      partSize: options.partSize,
      concurrency: options.partConcurrency,
      bufferDir: options.bufferDir ?? tmpdir(),
    };
  }

  /** The bucket, and the store's backend: /health reports it and shutdown closes its connections. */
  readonly backend: BucketHandle;

  get #bucket(): S3Bucket {
    return this.backend.bucket;
  }

  async prepare(): Promise<void> {
    await this.backend.connect();
  }

  async create(placement: NewUploadPlacement): Promise<string> {
    // Nothing is stored yet: the multipart upload starts with the first full part.
    return uploadLocation(this.#options.dirStructure, placement.createdAt, this.#options.env, placement.id);
  }

  describe(location: string): string {
    return location;
  }

  /**
   * The part size of an upload with `stored` bytes. Once a part was sent, every part has its size. Before,
   * all bytes are in the tail at 0, which the part size must exceed (it may not, if --s3-part-size was
   * lowered since), so it is then the configured size times as much as needed.
   */
  #partSize(firstPart: StoredPart | undefined, stored: number): number {
    if (firstPart) return firstPart.size;
    const configured = this.#tuning.partSize;
    return configured * Math.max(1, Math.ceil((stored + 1) / configured));
  }

  /** Where each part starts and how large it is, from the first part's size (parts grow: part-size.ts). */
  #grid(firstSize: number): PartLayout {
    return new PartLayout(firstSize, this.#options.partsPerSize);
  }

  /** The upload's multipart upload (if one started) and the part size its parts use. */
  async #layout(key: string, stored: number): Promise<{ uploadId: string | undefined; partSize: number }> {
    const [uploadId] = await this.#bucket.multipartUploads(key);
    const [first] = uploadId === undefined ? [] : await this.#bucket.parts(key, uploadId, 1);
    return { uploadId, partSize: this.#partSize(first, stored) };
  }

  async #tails(key: string): Promise<{ key: string; start: number; size: number; lastModified: number }[]> {
    const prefix = tailPrefix(key);
    const tails: { key: string; start: number; size: number; lastModified: number }[] = [];
    for await (const object of this.#bucket.list(prefix)) {
      const rest = object.key.slice(prefix.length);
      if (/^\d+$/.test(rest)) {
        tails.push({
          key: object.key,
          start: Number(rest),
          size: object.size,
          lastModified: object.lastModified,
        });
      }
    }
    return tails;
  }

  async #removeTails(key: string, keep: (start: number) => boolean): Promise<void> {
    for (const tail of await this.#tails(key)) {
      if (!keep(tail.start)) await this.#bucket.remove(tail.key);
    }
  }

  /** Takes the upload's local tail out of the cache (whoever takes it owns its file). */
  #takeLocalTail(key: string): LocalTail | undefined {
    const tail = this.#localTails.get(key);
    this.#localTails.delete(key);
    return tail;
  }

  async #keepLocalTail(key: string, tail: LocalTail): Promise<void> {
    this.#localTails.set(key, tail);
    for (const [oldestKey, oldest] of this.#localTails) {
      if (this.#localTails.size <= localTailLimit) break;
      this.#localTails.delete(oldestKey);
      await rm(oldest.path, { force: true });
    }
  }

  async #dropLocalTail(key: string): Promise<void> {
    const tail = this.#takeLocalTail(key);
    if (tail) await rm(tail.path, { force: true });
  }

  /**
   * The part to fill, starting with the `length` bytes already stored after `partStart`: the local copy of
   * the tail when this instance wrote the tail object as it still is, else a download of it.
   */
  async #openPart(key: string, partStart: number, length: number): Promise<PartFile> {
    const local = this.#takeLocalTail(key);
    if (length > 0 && local && local.partStart === partStart && local.size >= length) {
      const stored = await this.#bucket.stat(tailKey(key, partStart));
      if (stored?.etag === local.etag) return PartFile.reopen(local.path, length);
    }
    if (local) await rm(local.path, { force: true });
    const part = await PartFile.create(this.#tuning.bufferDir);
    if (length === 0) return part;
    try {
      await this.#loadTail(key, partStart, length, part);
      return part;
    } catch (error) {
      await part.remove();
      throw error;
    }
  }

  /** Copies the first `length` bytes of the tail at `partStart` into the part being filled. */
  async #loadTail(key: string, partStart: number, length: number, into: PartFile): Promise<void> {
    const source = await this.#bucket.read(tailKey(key, partStart), { start: 0, end: length - 1 });
    const got = await into.writeFrom(source);
    if (got !== length) {
      throw new Error(`S3 tail of ${key} holds ${got} bytes where the offset needs ${length}`);
    }
  }

  /**
   * Where an append at `offset` starts: the layout, and the part to fill with the bytes already stored in
   * it. When this instance's last append of the upload ended exactly at `offset`, nothing else happened to
   * the upload since (offsets only grow, and a discarded chunk leaves the offset where that append began),
   * so the layout and the tail it kept are used as they are, without waiting for S3.
   */
  async #begin(
    key: string,
    offset: number,
  ): Promise<{
    uploadId: string | undefined;
    partSize: number;
    firstPartStart: number;
    part: PartFile;
    /** Tails past the offset being removed (another instance's cut attempt); awaited before a tail is saved. */
    clearing?: Promise<void>;
  }> {
    const local = this.#localTails.get(key);
    if (local && offset === local.partStart + local.size) {
      this.#localTails.delete(key);
      // A kept file someone removed (a temp-folder cleaner) only means going the long way.
      const part = await PartFile.reopen(local.path, local.size).catch(() => undefined);
      if (part) {
        // Garbage only: if it cannot go now, finishing or removing the upload removes it.
        if (local.consumedTail !== undefined) {
          await this.#bucket.remove(tailKey(key, local.consumedTail)).catch(() => undefined);
        }
        // Only this instance's own appends are known here: another one's cut attempt may have left tails past
        // the offset, which would otherwise mark the stored bytes as ending there (see stored()).
        const clearing = this.#removeTails(key, (start) => start <= local.partStart).catch(() => undefined);
        return {
          uploadId: local.uploadId,
          partSize: local.partSize,
          firstPartStart: local.partStart,
          part,
          clearing,
        };
      }
    }
    const { uploadId, partSize } = await this.#layout(key, offset);
    const firstPartStart = this.#grid(partSize).partAt(offset).start;
    if (uploadId === undefined && firstPartStart > 0) {
      throw new Error(`S3 upload of ${key} has no multipart upload at offset ${offset}`);
    }
    // Tails below this offset's part were either consumed into parts or left by a discarded chunk.
    const [opened, removed] = await Promise.allSettled([
      this.#openPart(key, firstPartStart, offset - firstPartStart),
      this.#removeTails(key, (start) => start === firstPartStart),
    ]);
    if (opened.status === 'fulfilled' && removed.status === 'fulfilled') {
      return { uploadId, partSize, firstPartStart, part: opened.value };
    }
    if (opened.status === 'fulfilled') await opened.value.remove();
    const failure = opened.status === 'rejected' ? opened.reason : (removed as PromiseRejectedResult).reason;
    const rebuilt = await this.#rebuildIfCut(key, offset, { uploadId, partSize }, failure);
    return {
      uploadId: rebuilt.uploadId,
      partSize: rebuilt.partSize,
      firstPartStart: rebuilt.partStart,
      part: rebuilt.part,
    };
  }

  /**
   * After `failure` (a tail that could not be read): when the bytes below `offset` are not in the tail of the
   * offset's part, they went into an uploaded part (stored past the offset: a PATCH cut after it sent that
   * part), and the upload is laid out again to end at the offset; otherwise `failure` stands. The normal
   * path never comes here, so it costs no request.
   */
  async #rebuildIfCut(
    key: string,
    offset: number,
    layout: RebuildLayout,
    failure: unknown,
  ): Promise<Rebuilt> {
    const { start: partStart, number: through } = this.#grid(layout.partSize).partAt(offset);
    const tail = await this.#bucket.size(tailKey(key, partStart));
    if (tail !== undefined && tail >= offset - partStart) throw failure;
    if (tail !== undefined && !(await this.#covered(key, layout, offset, through))) {
      // Not a cut PATCH (that leaves the offset's part in S3): the tail lost bytes the offset counts, and a
      // rebuild would only fail later on a part that was never sent.
      throw new Error(
        `S3 upload of ${key} cannot continue at ${offset}: its tail at ${partStart} holds ${tail} bytes where ` +
          `${offset - partStart} were stored, and no part holds the rest`,
        { cause: failure },
      );
    }
    const rebuilt = await rebuildAt(this.#bucket, key, layout, offset, {
      ...this.#tuning,
      ...(this.#options.partsPerSize !== undefined ? { partsPerSize: this.#options.partsPerSize } : {}),
      tailKey: (start) => tailKey(key, start),
    });
    try {
      await this.#removeTails(key, (start) => start === rebuilt.partStart);
    } catch (error) {
      await rebuilt.part.remove();
      throw error;
    }
    return rebuilt;
  }

  /**
   * Whether the bytes below `offset` are somewhere a rebuild reads them: the offset's part (number
   * `through`) uploaded at its full size, or the object an earlier, cut rebuild completed (see rebuildAt).
   */
  async #covered(key: string, layout: RebuildLayout, offset: number, through: number): Promise<boolean> {
    if (((await this.#bucket.size(key)) ?? 0) >= offset) return true;
    if (layout.uploadId === undefined) return false;
    const parts = await this.#bucket.parts(key, layout.uploadId, through);
    const part = parts.find((candidate) => candidate.partNumber === through);
    return part !== undefined && part.size === this.#grid(layout.partSize).sizeOf(through);
  }

  async append(location: string, offset: number, source: Readable): Promise<AppendResult> {
    const key = location;
    const bucket = this.#bucket;
    let part: PartFile | undefined;
    try {
      const begun = await this.#begin(key, offset);
      let { uploadId } = begun;
      const { partSize, firstPartStart } = begun;
      part = begun.part;

      const uploads = new PartUploads(this.#tuning.concurrency);
      // Parts grow as the upload grows (part-size.ts): the part being filled has its own size.
      const layout = this.#grid(partSize);
      let partNumber = layout.partAt(firstPartStart).number;
      let partStart = firstPartStart;
      let failure: unknown;
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          let rest = chunk;
          while (rest.length > 0) {
            const size = layout.sizeOf(partNumber);
            const piece = rest.subarray(0, size - part.size);
            rest = rest.subarray(piece.length);
            await part.write(piece);
            if (part.size < size) continue;
            const full = part;
            const number = partNumber;
            part = await PartFile.create(this.#tuning.bufferDir);
            partStart += size;
            partNumber++;
            try {
              // Looked up first: another instance may have started it since this one last looked.
              uploadId ??= (await bucket.multipartUploads(key))[0] ?? (await bucket.startMultipart(key));
              await full.close();
            } catch (error) {
              await full.remove();
              throw error;
            }
            const target = uploadId;
            await uploads.add(number, async (): Promise<StoredPart> => {
              try {
                return await bucket.uploadPartFromFile(key, target, number, full.path, 0, size);
              } finally {
                await full.remove();
              }
            });
            if (uploads.failure) throw uploads.failure.error;
          }
        }
      } catch (error) {
        failure = error;
      }
      await begun.clearing;
      // The tail is saved while the last parts are still in flight.
      const tail = part;
      const tailStart = partStart;
      // Read once, before closing starts: the saving and the end marker below must agree on it, or both
      // PUTs go to the same key and the one S3 completes last (maybe the empty one) is the tail.
      const tailSize = tail.size;
      const newTailBytes = tailStart === firstPartStart ? tailSize - (offset - firstPartStart) : tailSize;
      const savingTail =
        newTailBytes > 0 && !uploads.failure
          ? tail
              .close()
              .then(() => bucket.putFile(tailKey(key, tailStart), tail.path, tailSize))
              .then(
                (etag) => ({ saved: true as const, etag }),
                (error: unknown) => ({ saved: false as const, error }),
              )
          : undefined;
      // An append that ends on a part boundary leaves an empty tail there: the highest tail marks where the
      // stored bytes end, which rebuilding a lost record needs (see stored()). Only a hint: failing costs nothing.
      const markingEnd =
        tailSize === 0 && tailStart > firstPartStart && !uploads.failure
          ? bucket.putEmpty(tailKey(key, tailStart)).catch(() => undefined)
          : undefined;
      const [tailOutcome] = await Promise.all([savingTail, uploads.settle(), markingEnd]);

      // What is durable: every part below the first that failed, then the tail if it could be saved.
      let durable: number;
      if (uploads.failure) {
        // A tail saved past a failed part is never read: the next append starts at that part's boundary.
        failure ??= uploads.failure.error;
        durable = layout.startOf(uploads.failure.partNumber);
      } else if (tailOutcome?.saved === false) {
        failure ??= tailOutcome.error;
        durable = tailStart;
      } else {
        durable = tailStart + (tailOutcome ? tailSize : 0);
        if (tailOutcome?.etag !== undefined) {
          // Kept on disk: the next PATCH of this upload on this instance need not download it.
          await this.#keepLocalTail(key, {
            partStart: tailStart,
            size: tailSize,
            etag: tailOutcome.etag,
            path: tail.path,
            partSize,
            uploadId,
            consumedTail:
              tailStart !== firstPartStart && offset > firstPartStart ? firstPartStart : undefined,
          });
          part = undefined;
        }
      }
      const bytesWritten = Math.max(0, durable - offset);
      return failure === undefined ? { bytesWritten } : { bytesWritten, error: failure };
    } catch (error) {
      return { bytesWritten: 0, error };
    } finally {
      await part?.remove();
    }
  }

  /**
   * Nothing below `length` was changed by the append being undone (see the class comment), so cutting back
   * checks that the upload can continue from `length`, drops tails the discarded bytes left, and leaves the
   * tail of `length`'s part holding exactly the bytes below `length` (an empty one on a part boundary): the
   * stored bytes then end at `length`, as a rebuilt record will read them (see stored()).
   */
  async truncate(location: string, length: number): Promise<void> {
    const key = location;
    await this.#dropLocalTail(key);
    const { uploadId, partSize } = await this.#layout(key, length);
    const partStart = this.#grid(partSize).partAt(length).start;
    if (partStart > 0 && uploadId === undefined) {
      throw new Error(`S3 upload of ${key} cannot be cut back to ${length}: no multipart upload`);
    }
    const keep = length - partStart;
    const size = await this.#bucket.size(tailKey(key, partStart));
    if (keep > 0 && (size === undefined || size < keep)) {
      const missing = new Error(`S3 upload of ${key} cannot be cut back to ${length}: its tail is missing`);
      if (uploadId === undefined) throw missing;
      // The bytes below `length` went into a part (stored past it): laid out again to end at `length`.
      const { part } = await this.#rebuildIfCut(key, length, { uploadId, partSize }, missing);
      await part.remove();
      return;
    }
    if (size !== keep) await this.#rewriteTail(key, partStart, keep);
    await this.#removeTails(key, (start) => start <= partStart);
  }

  /** Replaces the tail at `partStart` with its first `keep` bytes. */
  async #rewriteTail(key: string, partStart: number, keep: number): Promise<void> {
    if (keep === 0) {
      await this.#bucket.putEmpty(tailKey(key, partStart));
      return;
    }
    const part = await PartFile.create(this.#tuning.bufferDir);
    try {
      await this.#loadTail(key, partStart, keep, part);
      await part.close();
      await this.#bucket.putFile(tailKey(key, partStart), part.path, keep);
    } finally {
      await part.remove();
    }
  }

  /**
   * The bytes stored for the upload: the object once finished; before, the parts and the highest tail, which
   * marks where the last append (or cut) ended. Parts above it are leftovers of a discarded chunk; parts
   * missing below it (a process killed while they were in flight) end the count at the first gap.
   */
  async stored(location: string): Promise<StoredData> {
    const key = location;
    const object = await this.#bucket.stat(key);
    if (object) return { length: object.size, modifiedAt: object.lastModified };
    const [uploadId] = await this.#bucket.multipartUploads(key);
    const parts = uploadId === undefined ? [] : await this.#bucket.parts(key, uploadId);
    const grid = this.#grid(parts[0]?.size ?? 0);
    let full = 0;
    while (parts[full]?.partNumber === full + 1 && parts[full]?.size === grid.sizeOf(full + 1)) full++;
    const fullEnd = full === 0 ? 0 : grid.startOf(full + 1);
    const tails = await this.#tails(key);
    const highest = tails.reduce<(typeof tails)[number] | undefined>(
      (top, tail) => (top === undefined || tail.start > top.start ? tail : top),
      undefined,
    );
    const end =
      highest !== undefined && highest.start <= fullEnd
        ? highest
        : tails.find((tail) => tail.start === fullEnd);
    const length = end === undefined ? fullEnd : end.start + end.size;
    const times = [
      ...(end !== undefined ? [end.lastModified] : []),
      ...parts.slice(0, full).flatMap((part) => (part.lastModified !== undefined ? [part.lastModified] : [])),
    ];
    return { length, modifiedAt: times.length > 0 ? Math.max(...times) : undefined };
  }

  /** Finished objects, tails and multipart uploads at keys the store's layout gives. */
  async *storedLocations(): AsyncIterable<{ location: string; modifiedAt: number }> {
    const prefix = fixedDirPrefix(this.#options.dirStructure);
    const { pattern } = layoutPattern(this.#options.dirStructure);
    const under = prefix === '' ? '' : `${prefix}/`;
    for await (const object of this.#bucket.list(under)) {
      if (!object.key.startsWith('.wharf-') && pattern.test(object.key)) {
        yield { location: object.key, modifiedAt: object.lastModified };
      }
    }
    for await (const object of this.#bucket.list(`${tailFolder}/${under}`)) {
      const location = object.key.slice(tailFolder.length + 1, object.key.lastIndexOf('/'));
      if (pattern.test(location)) yield { location, modifiedAt: object.lastModified };
    }
    for await (const upload of this.#bucket.multipartUploadsUnder(under)) {
      if (pattern.test(upload.key)) yield { location: upload.key, modifiedAt: upload.initiated };
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

  /**
   * Completes the multipart upload: the full parts below `length`, then the tail copied in as the last part.
   * Parts above are dropped by S3, so the object is exactly `length` bytes.
   */
  finish(location: string, length: number): Promise<void> {
    return this.#finish(location, length, false);
  }

  /** `rebuilt`: the upload was just laid out again to end at `length`, so a missing tail is not retried. */
  async #finish(key: string, length: number, rebuilt: boolean): Promise<void> {
    const bucket = this.#bucket;
    await this.#dropLocalTail(key);
    const [uploadId, ...strays] = await bucket.multipartUploads(key);
    for (const stray of strays) await bucket.abortMultipart(key, stray);
    if (uploadId === undefined && (await bucket.size(key)) === length) {
      // Already finished (a retry after the tails could not be removed).
      await this.#removeTails(key, () => false);
      return;
    }
    if (length === 0) {
      if (uploadId !== undefined) await bucket.abortMultipart(key, uploadId);
      await bucket.putEmpty(key);
      return;
    }
    const target = uploadId ?? (await bucket.startMultipart(key));
    const stored = uploadId === undefined ? [] : await bucket.parts(key, uploadId);
    const layout = this.#grid(this.#partSize(stored[0], length));
    const { number: tailNumber, start: tailStart } = layout.partAt(length);
    const fullParts = tailNumber - 1;
    const tailLength = length - tailStart;
    const chosen: StoredPart[] = [];
    for (let number = 1; number <= fullParts; number++) {
      const part = stored.find((candidate) => candidate.partNumber === number);
      if (!part || part.size !== layout.sizeOf(number))
        throw new Error(`S3 upload of ${key} is missing part ${number}`);
      chosen.push(part);
    }
    if (tailLength > 0) {
      try {
        chosen.push(
          await bucket.copyPart(key, target, fullParts + 1, tailKey(key, tailStart), {
            start: 0,
            end: tailLength - 1,
          }),
        );
      } catch (error) {
        // The bytes below `length` went into a part (stored past it): laid out again to end at `length`.
        if (rebuilt || uploadId === undefined) throw error;
        const { part } = await this.#rebuildIfCut(
          key,
          length,
          { uploadId, partSize: layout.firstSize },
          error,
        );
        await part.remove();
        return this.#finish(key, length, true);
      }
    }
    // Parts above these (from discarded chunks) are dropped by S3 when the upload completes.
    await bucket.completeMultipart(key, target, chosen);
    await this.#removeTails(key, () => false);
  }

  /**
   * The object exists under the upload's key only once its multipart upload was completed (or put empty). A
   * rebuild (see rebuildAt) also completes one, but starts the next multipart upload first: an object
   * beside a multipart upload is not a finished upload.
   */
  async isFinished(location: string, length: number): Promise<boolean> {
    if ((await this.#bucket.size(location)) !== length) return false;
    return (await this.#bucket.multipartUploads(location)).length === 0;
  }

  async read(location: string, range?: ByteRange): Promise<Readable> {
    return this.#bucket.read(location, range);
  }

  async remove(location: string): Promise<void> {
    const key = location;
    await this.#dropLocalTail(key);
    for (const uploadId of await this.#bucket.multipartUploads(key)) {
      await this.#bucket.abortMultipart(key, uploadId);
    }
    await this.#removeTails(key, () => false);
    await this.#bucket.remove(key);
  }

  async concatenate(target: string, sources: readonly { location: string; length: number }[]): Promise<void> {
    await concatenateObjects(
      this.#bucket,
      target,
      sources.map((source) => ({ key: source.location, length: source.length })),
      { ...this.#tuning, concurrency: this.#options.concatConcurrency },
    );
  }
}
