import { PartFile } from './part-file.ts';
import { PartLayout } from './part-size.ts';
import { PartUploads } from './part-uploads.ts';
import type { S3Bucket, StoredPart } from './s3-bucket.ts';

/** S3 refuses parts below 5 MiB, except the last one of an object. */
export const minimumPartSize = 5 * 1024 * 1024;
/** …and above 5 GiB. */
const maximumPartSize = 5 * 1024 * 1024 * 1024;

export interface PartTuning {
  readonly partSize: number;
  readonly concurrency: number;
  readonly bufferDir: string;
}

/** Runs a multipart upload to `key` with the parts `fill` adds; aborts it on any failure. */
async function multipart(
  bucket: S3Bucket,
  key: string,
  concurrency: number,
  fill: (uploadId: string, uploads: PartUploads) => Promise<void>,
): Promise<void> {
  const uploadId = await bucket.startMultipart(key);
  const uploads = new PartUploads(concurrency);
  try {
    await fill(uploadId, uploads);
    await uploads.settle();
    if (uploads.failure) throw uploads.failure.error;
    await bucket.completeMultipart(key, uploadId, uploads.parts);
  } catch (error) {
    await uploads.settle();
    await bucket.abortMultipart(key, uploadId);
    throw error;
  }
}

/** Sends a local file as the object `key`: one PUT when it fits in a part, else parts read from the file. */
export async function uploadFile(
  bucket: S3Bucket,
  key: string,
  file: string,
  length: number,
  tuning: PartTuning,
): Promise<void> {
  if (length <= tuning.partSize) {
    await bucket.putFile(key, file, length);
    return;
  }
  await multipart(bucket, key, tuning.concurrency, async (uploadId, uploads) => {
    // Parts grow as in the s3 store (part-size.ts), so a file past 10 000 parts of --s3-part-size fits.
    const layout = new PartLayout(tuning.partSize);
    for (let start = 0, partNumber = 1, size = 0; start < length; start += size, partNumber++) {
      size = Math.min(layout.sizeOf(partNumber), length - start);
      const number = partNumber;
      const from = start;
      await uploads.add(number, () => bucket.uploadPartFromFile(key, uploadId, number, file, from, size));
      if (uploads.failure) return;
    }
  });
}

/**
 * Builds `target` from whole objects, in order, inside S3 where it can: a source (or its rest) of at least
 * 5 MiB becomes parts copied server-side (`UploadPartCopy` with a range); smaller pieces cannot be parts on
 * their own, so they are gathered in a local part file (ranged reads) until a part is full.
 */
export async function concatenateObjects(
  bucket: S3Bucket,
  target: string,
  sources: readonly { key: string; length: number }[],
  tuning: PartTuning,
): Promise<void> {
  const total = sources.reduce((sum, source) => sum + source.length, 0);
  if (total === 0) {
    await bucket.putEmpty(target);
    return;
  }
  await multipart(bucket, target, tuning.concurrency, async (uploadId, uploads) => {
    let partNumber = 0;
    let gathering: PartFile | undefined;
    const sendGathered = async (): Promise<void> => {
      const file = gathering;
      gathering = undefined;
      if (!file) return;
      await file.close();
      const number = ++partNumber;
      await uploads.add(number, async () => {
        try {
          return await bucket.uploadPartFromFile(target, uploadId, number, file.path, 0, file.size);
        } finally {
          await file.remove();
        }
      });
    };
    try {
      for (const source of sources) {
        let cursor = 0;
        while (cursor < source.length && !uploads.failure) {
          const rest = source.length - cursor;
          if (!gathering && rest >= minimumPartSize) {
            // Leave at least a minimum part behind a 5 GiB copy, so the remainder can still be a part.
            let size = Math.min(rest, maximumPartSize);
            if (rest > size && rest - size < minimumPartSize) size = rest - minimumPartSize;
            const number = ++partNumber;
            const range = { start: cursor, end: cursor + size - 1 };
            await uploads.add(
              number,
              (): Promise<StoredPart> => bucket.copyPart(target, uploadId, number, source.key, range),
            );
            cursor += size;
            continue;
          }
          gathering ??= await PartFile.create(tuning.bufferDir);
          const take = Math.min(rest, tuning.partSize - gathering.size);
          const piece = await bucket.read(source.key, { start: cursor, end: cursor + take - 1 });
          const got = await gathering.writeFrom(piece);
          if (got !== take) throw new Error(`S3 object ${source.key} is shorter than its recorded length`);
          cursor += take;
          if (gathering.size === tuning.partSize) await sendGathered();
        }
      }
      await sendGathered();
    } finally {
      await gathering?.remove();
    }
  });
}
