/**
 * The S3-compatible server the tests use: S3Proxy started by scripts/services/s3proxy.sh. Override with
 * WHARF_TEST_S3_URL, WHARF_TEST_S3_BUCKET, WHARF_TEST_S3_ACCESS_KEY and WHARF_TEST_S3_SECRET_KEY.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';

export const s3Url = process.env.WHARF_TEST_S3_URL ?? 'http://127.0.0.1:19000';
export const s3Bucket = process.env.WHARF_TEST_S3_BUCKET ?? 'wharf-test';
const accessKey = process.env.WHARF_TEST_S3_ACCESS_KEY ?? 'wharf-test';
const secretKey = process.env.WHARF_TEST_S3_SECRET_KEY ?? 'wharf-test-secret';

/** Connection options for Wharf's own S3 stores (S3DataStore, HybridS3DataStore, S3Bucket) on the test bucket. */
export const s3Connection = {
  endpoint: s3Url,
  bucket: s3Bucket,
  region: 'us-east-1',
  credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  profile: undefined,
  forcePathStyle: true,
  headers: {},
};

/** An independent client, so assertions look at the bucket without going through Wharf's code. */
export const s3 = new S3Client({
  endpoint: s3Url,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

/**
 * Why the S3 suites cannot run, or undefined when the server answers. Outside CI an unreachable server
 * skips them with a loud message; under CI (CI=true) it fails the run.
 */
/**
 * Fails (never skips) when the test bucket cannot be reached: `npm test` starts S3Proxy itself, so an unreachable
 * bucket is a broken setup to report. Returns undefined, for `{ skip: await s3Unavailable() }` call sites.
 */
export async function s3Unavailable(): Promise<undefined> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: s3Bucket }));
    return undefined;
  } catch (error) {
    throw new Error(
      `S3 server at ${s3Url} (bucket ${s3Bucket}) unreachable: ${(error as Error).name}; start it with scripts/services/s3proxy.sh start`,
    );
  }
}

/** Wharf flags for the bucket, with keys under a fresh folder so each run sees only its own objects. */
export function s3Args(
  storage: 's3' | 'hybrid-s3',
  extra: readonly string[] = [],
): {
  args: string[];
  folder: string;
} {
  const folder = `test-${randomUUID()}`;
  return {
    folder,
    args: [
      '--storage',
      storage,
      '--s3-url',
      s3Url,
      '--s3-bucket',
      s3Bucket,
      '--s3-access-key',
      accessKey,
      '--s3-secret-key',
      secretKey,
      '--s3-force-path-style',
      '--dir-structure',
      folder,
      ...extra,
    ],
  };
}

/** Every object key under a prefix (tails included when the prefix covers them). */
export async function listKeys(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: s3Bucket,
        Prefix: prefix,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
    for (const entry of page.Contents ?? []) if (entry.Key) keys.push(entry.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Keys of the unfinished multipart uploads whose key starts with `prefix`. */
export async function pendingMultipartUploads(prefix: string): Promise<string[]> {
  const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: s3Bucket, Prefix: prefix }));
  return (page.Uploads ?? []).map((upload) => upload.Key ?? '');
}

export async function objectSha256(key: string): Promise<{ sha256: string; size: number }> {
  const output = await s3.send(new GetObjectCommand({ Bucket: s3Bucket, Key: key }));
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of output.Body as Readable) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Deletes every object under a prefix (a test run's folder), so runs do not fill the bucket. */
export async function removeObjects(prefix: string): Promise<void> {
  const keys = await listKeys(prefix);
  for (let index = 0; index < keys.length; index += 1000) {
    await s3.send(
      new DeleteObjectsCommand({
        Bucket: s3Bucket,
        Delete: { Objects: keys.slice(index, index + 1000).map((Key) => ({ Key })), Quiet: true },
      }),
    );
  }
}

export const s3SecretKey = secretKey;

/** The user metadata S3 keeps with an object (x-amz-meta-* headers, names lowercased). */
export async function objectMetadata(key: string): Promise<Record<string, string>> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: s3Bucket, Key: key }));
  return head.Metadata ?? {};
}
