import { PartFile } from './part-file.ts';
import { PartLayout } from './part-size.ts';
import { PartUploads } from './part-uploads.ts';
import type { S3Bucket } from './s3-bucket.ts';

/** How an unfinished upload is laid out in the bucket, as the S3 store found it. */
export interface RebuildLayout {
  /** The multipart upload holding the parts, if one was started. */
  readonly uploadId: string | undefined;
  /** The size of its first parts (later ones grow, see part-size.ts). */
  readonly partSize: number;
}

export interface RebuildTuning {
  /** The configured part size: the layout of the rebuilt upload when it starts from a leftover object. */
  readonly partSize: number;
  readonly concurrency: number;
  readonly bufferDir: string;
  /** The key of the tail object of the part starting at `partStart`. */
  readonly tailKey: (partStart: number) => string;
  /** Parts at one size before it doubles (part-size.ts); only tests set it. */
  readonly partsPerSize?: number;
}

/** The upload laid out again to end at the offset, with the part to keep filling. */
export interface Rebuilt {
  readonly uploadId: string;
  readonly partSize: number;
  readonly partStart: number;
  /** Holds the bytes of the part below the offset (also saved as its tail); the caller owns it. */
  readonly part: PartFile;
}

/**
 * Lays an unfinished S3 upload out again so that it ends at `offset`, when the bytes just below the offset
 * are inside an uploaded part (a PATCH killed, or whose record write failed, after a part past the recorded
 * offset was sent). S3 cannot read a part of an unfinished multipart upload, so:
 *
 * 1. a new multipart upload is started first: while it exists the key is not taken for a finished upload
 *    (see S3DataStore.isFinished), even if this is cut short;
 * 2. the old multipart upload is completed with the parts up to the offset's part, which makes their bytes a
 *    readable object under the upload's key (skipped when an earlier, cut rebuild left that object);
 * 3. the full parts below the offset are copied into the new upload server-side (UploadPartCopy), and the
 *    bytes between the last full part and the offset (less than a part) are streamed through a part file on
 *    disk into the tail object: memory stays at one network chunk;
 * 4. every other multipart upload of the key is aborted, then the object is removed.
 *
 * Each step leaves a state the next append recognises (a missing tail sends it here again, with the object
 * or the old parts as its source), so a process killed at any point loses nothing below the offset.
 */
export async function rebuildAt(
  bucket: S3Bucket,
  key: string,
  layout: RebuildLayout,
  offset: number,
  tuning: RebuildTuning,
): Promise<Rebuilt> {
  const leftover = await bucket.stat(key);
  let partSize: number;
  let fresh: string;
  if (leftover !== undefined && leftover.size >= offset) {
    // An earlier rebuild was cut after step 2: its object holds everything below the offset.
    partSize = tuning.partSize;
    fresh = await bucket.startMultipart(key);
  } else {
    const old = layout.uploadId;
    if (old === undefined) throw new Error(`S3 upload of ${key} cannot continue at ${offset}: no parts`);
    partSize = layout.partSize;
    const through = new PartLayout(partSize, tuning.partsPerSize).partAt(offset).number;
    const parts = await bucket.parts(key, old, through);
    for (let number = 1; number <= through; number++) {
      const part = parts[number - 1];
      if (
        part?.partNumber !== number ||
        part.size !== new PartLayout(partSize, tuning.partsPerSize).sizeOf(number)
      ) {
        throw new Error(`S3 upload of ${key} cannot continue at ${offset}: part ${number} is missing`);
      }
    }
    fresh = await bucket.startMultipart(key);
    await bucket.completeMultipart(key, old, parts.slice(0, through));
  }

  const grid = new PartLayout(partSize, tuning.partsPerSize);
  const partStart = grid.partAt(offset).start;
  const copies = new PartUploads(tuning.concurrency);
  for (let start = 0, partNumber = 1, size = 0; start < partStart; start += size, partNumber++) {
    size = grid.sizeOf(partNumber);
    const [number, from, to] = [partNumber, start, start + size - 1];
    await copies.add(number, () => bucket.copyPart(key, fresh, number, key, { start: from, end: to }));
    if (copies.failure) break;
  }
  const part = await PartFile.create(tuning.bufferDir);
  try {
    if (offset > partStart) {
      const got = await part.writeFrom(await bucket.read(key, { start: partStart, end: offset - 1 }));
      if (got !== offset - partStart) throw new Error(`S3 read of ${key} was ${got} bytes short`);
    }
    await part.close();
    // Saved even when empty: the highest tail marks where the stored bytes end (see S3DataStore.stored).
    await bucket.putFile(tuning.tailKey(partStart), part.path, offset - partStart);
    await copies.settle();
    if (copies.failure) throw copies.failure.error;
    for (const uploadId of await bucket.multipartUploads(key)) {
      if (uploadId !== fresh) await bucket.abortMultipart(key, uploadId);
    }
    await bucket.remove(key);
    return {
      uploadId: fresh,
      partSize,
      partStart,
      part: await PartFile.reopen(part.path, offset - partStart),
    };
  } catch (error) {
    await copies.settle();
    await part.remove();
    throw error;
  }
}
