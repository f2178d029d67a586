import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { requirePackage } from '../require-package.ts';

/** How to reach the bucket; the shape of the `s3` configuration, without Wharf's own tuning options. */
export interface S3Connection {
  readonly endpoint: string | undefined;
  readonly bucket: string;
  readonly region: string;
  readonly credentials:
    | { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string }
    | undefined;
  readonly profile: string | undefined;
  readonly forcePathStyle: boolean;
  readonly headers: Readonly<Record<string, string>>;
}

export interface StoredPart {
  readonly partNumber: number;
  readonly size: number;
  readonly etag: string;
  /** Unix milliseconds, when S3 listed it. */
  readonly lastModified?: number;
}

export interface InclusiveRange {
  readonly start: number;
  readonly end: number;
}

type Sdk = typeof import('@aws-sdk/client-s3');

const uploadAttempts = 3;

function isNotFound(error: unknown): boolean {
  const candidate = error as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return (
    candidate?.name === 'NoSuchKey' ||
    candidate?.name === 'NotFound' ||
    candidate?.name === 'NoSuchUpload' ||
    candidate?.$metadata?.httpStatusCode === 404
  );
}

function rangeHeader(range: InclusiveRange): string {
  return `bytes=${range.start}-${range.end}`;
}

/**
 * The few S3 operations the storages use, bound to one bucket. The AWS SDK is large, so it is loaded only
 * when an S3 storage is configured.
 */
export class S3Bucket {
  readonly name: string;
  readonly #client: S3Client;
  readonly #sdk: Sdk;

  private constructor(sdk: Sdk, client: S3Client, name: string) {
    this.#sdk = sdk;
    this.#client = client;
    this.name = name;
  }

  static async connect(connection: S3Connection): Promise<S3Bucket> {
    const sdk = requirePackage('@aws-sdk/client-s3') as Sdk;
    const client = new sdk.S3Client({
      region: connection.region,
      forcePathStyle: connection.forcePathStyle,
      ...(connection.endpoint !== undefined ? { endpoint: connection.endpoint } : {}),
      ...(connection.credentials !== undefined ? { credentials: connection.credentials } : {}),
      ...(connection.profile !== undefined ? { profile: connection.profile } : {}),
      // Checksums only where S3 requires them: the SDK's default CRC32 trailers break many S3-compatible
      // stores, and every body here has an exact length.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const extraHeaders = Object.entries(connection.headers);
    if (extraHeaders.length > 0) {
      client.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers) for (const [name, value] of extraHeaders) request.headers[name] = value;
          return next(args);
        },
        // Before signing, so the headers are signed like the rest of the request.
        { step: 'build', name: 'wharfExtraHeaders' },
      );
    }
    return new S3Bucket(sdk, client, connection.bucket);
  }

  /** Fails with the store's own error when the bucket cannot be reached or does not exist. */
  async check(): Promise<void> {
    try {
      await this.#client.send(new this.#sdk.HeadBucketCommand({ Bucket: this.name }));
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const why =
        status === 404 ? 'it does not exist' : status === 403 ? 'access denied' : (error as Error).name;
      throw new Error(`S3 bucket ${JSON.stringify(this.name)} cannot be used: ${why}`, { cause: error });
    }
  }

  close(): void {
    this.#client.destroy();
  }

  /** The object's size and ETag, or undefined when it does not exist. */
  async stat(
    key: string,
  ): Promise<{ size: number; etag: string | undefined; lastModified: number | undefined } | undefined> {
    try {
      const head = await this.#client.send(new this.#sdk.HeadObjectCommand({ Bucket: this.name, Key: key }));
      return { size: head.ContentLength ?? 0, etag: head.ETag, lastModified: head.LastModified?.getTime() };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** The object's size, or undefined when it does not exist. */
  async size(key: string): Promise<number | undefined> {
    return (await this.stat(key))?.size;
  }

  async read(key: string, range?: InclusiveRange): Promise<Readable> {
    const output = await this.#client.send(
      new this.#sdk.GetObjectCommand({
        Bucket: this.name,
        Key: key,
        ...(range ? { Range: rangeHeader(range) } : {}),
      }),
    );
    if (!(output.Body instanceof Readable)) throw new Error(`S3 returned no readable body for ${key}`);
    return output.Body;
  }

  /**
   * Puts the first `length` bytes of a file as an object and returns its ETag; retried with a fresh stream,
   * since a stream is read once.
   */
  async putFile(key: string, file: string, length: number): Promise<string | undefined> {
    const output = await this.#withRetries(() =>
      this.#client.send(
        new this.#sdk.PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: length === 0 ? Buffer.alloc(0) : createReadStream(file, { start: 0, end: length - 1 }),
          ContentLength: length,
        }),
      ),
    );
    return output.ETag;
  }

  /** Puts a small object held in memory (a record copy). */
  async putBytes(key: string, bytes: Buffer): Promise<void> {
    await this.#client.send(
      new this.#sdk.PutObjectCommand({
        Bucket: this.name,
        Key: key,
        Body: bytes,
        ContentLength: bytes.length,
      }),
    );
  }

  /** A small object's bytes, or undefined when it does not exist. */
  async readSmall(key: string): Promise<Buffer | undefined> {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of await this.read(key)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async putEmpty(key: string): Promise<void> {
    await this.#client.send(
      new this.#sdk.PutObjectCommand({
        Bucket: this.name,
        Key: key,
        Body: Buffer.alloc(0),
        ContentLength: 0,
      }),
    );
  }

  async copy(sourceKey: string, key: string): Promise<void> {
    await this.#client.send(
      new this.#sdk.CopyObjectCommand({
        Bucket: this.name,
        Key: key,
        CopySource: this.#copySource(sourceKey),
      }),
    );
  }

  /** Deleting a missing object is not an error in S3. */
  async remove(key: string): Promise<void> {
    await this.#client.send(new this.#sdk.DeleteObjectCommand({ Bucket: this.name, Key: key }));
  }

  /** Keys, sizes and modification times of every object under a prefix. */
  async *list(prefix: string): AsyncGenerator<{ key: string; size: number; lastModified: number }> {
    let token: string | undefined;
    do {
      const page = await this.#client.send(
        new this.#sdk.ListObjectsV2Command({
          Bucket: this.name,
          Prefix: prefix,
          ...(token !== undefined ? { ContinuationToken: token } : {}),
        }),
      );
      for (const entry of page.Contents ?? []) {
        if (entry.Key !== undefined) {
          yield { key: entry.Key, size: entry.Size ?? 0, lastModified: entry.LastModified?.getTime() ?? 0 };
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async startMultipart(key: string): Promise<string> {
    const output = await this.#client.send(
      new this.#sdk.CreateMultipartUploadCommand({ Bucket: this.name, Key: key }),
    );
    if (output.UploadId === undefined) throw new Error(`S3 returned no UploadId for ${key}`);
    return output.UploadId;
  }

  /** Ids of the unfinished multipart uploads of exactly this key, oldest first. */
  async multipartUploads(key: string): Promise<string[]> {
    const ids: { id: string; initiated: number }[] = [];
    for await (const upload of this.#listMultipartUploads(key)) {
      if (upload.key === key && upload.uploadId !== undefined) {
        ids.push({ id: upload.uploadId, initiated: upload.initiated });
      }
    }
    return ids.sort((a, b) => a.initiated - b.initiated).map((upload) => upload.id);
  }

  /** Keys and start times of the unfinished multipart uploads under a prefix. */
  async *multipartUploadsUnder(prefix: string): AsyncGenerator<{ key: string; initiated: number }> {
    for await (const upload of this.#listMultipartUploads(prefix)) {
      yield { key: upload.key, initiated: upload.initiated };
    }
  }

  /** Every unfinished multipart upload whose key starts with `prefix`, following the listing's pages. */
  async *#listMultipartUploads(
    prefix: string,
  ): AsyncGenerator<{ key: string; uploadId: string | undefined; initiated: number }> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.#client.send(
        new this.#sdk.ListMultipartUploadsCommand({
          Bucket: this.name,
          Prefix: prefix,
          ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
          ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
        }),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined) continue;
        yield { key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated?.getTime() ?? 0 };
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** Parts uploaded so far, in part-number order; `limit` stops after that many. */
  async parts(key: string, uploadId: string, limit = Number.POSITIVE_INFINITY): Promise<StoredPart[]> {
    const parts: StoredPart[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.#client.send(
        new this.#sdk.ListPartsCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          ...(Number.isFinite(limit) ? { MaxParts: Math.min(limit, 1000) } : {}),
          ...(marker !== undefined ? { PartNumberMarker: marker } : {}),
        }),
      );
      for (const part of page.Parts ?? []) {
        if (part.PartNumber !== undefined && part.ETag !== undefined) {
          parts.push({
            partNumber: part.PartNumber,
            size: part.Size ?? 0,
            etag: part.ETag,
            ...(part.LastModified !== undefined ? { lastModified: part.LastModified.getTime() } : {}),
          });
        }
      }
      if (!page.IsTruncated || parts.length >= limit) break;
      marker = page.NextPartNumberMarker;
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  /** Sends `length` bytes of a file as one part; the same part number overwrites an earlier attempt. */
  async uploadPartFromFile(
    key: string,
    uploadId: string,
    partNumber: number,
    file: string,
    start: number,
    length: number,
  ): Promise<StoredPart> {
    const output = await this.#withRetries(() =>
      this.#client.send(
        new this.#sdk.UploadPartCommand({
          Bucket: this.name,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: createReadStream(file, { start, end: start + length - 1 }),
          ContentLength: length,
        }),
      ),
    );
    if (output.ETag === undefined) throw new Error(`S3 returned no ETag for part ${partNumber} of ${key}`);
    return { partNumber, size: length, etag: output.ETag };
  }

  /** Server-side copy of (a range of) an object into a part. */
  async copyPart(
    key: string,
    uploadId: string,
    partNumber: number,
    sourceKey: string,
    range: InclusiveRange,
  ): Promise<StoredPart> {
    const output = await this.#client.send(
      new this.#sdk.UploadPartCopyCommand({
        Bucket: this.name,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        CopySource: this.#copySource(sourceKey),
        CopySourceRange: rangeHeader(range),
      }),
    );
    const etag = output.CopyPartResult?.ETag;
    if (etag === undefined) throw new Error(`S3 returned no ETag for copied part ${partNumber} of ${key}`);
    return { partNumber, size: range.end - range.start + 1, etag };
  }

  async completeMultipart(key: string, uploadId: string, parts: readonly StoredPart[]): Promise<void> {
    await this.#client.send(
      new this.#sdk.CompleteMultipartUploadCommand({
        Bucket: this.name,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })) },
      }),
    );
  }

  /** Aborting an upload that is already gone is not an error. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.#client.send(
        new this.#sdk.AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }),
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  #copySource(key: string): string {
    return `${this.name}/${key.split('/').map(encodeURIComponent).join('/')}`;
  }

  async #withRetries<T>(send: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await send();
      } catch (error) {
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        const retryable = status === undefined || status >= 500 || status === 429;
        if (attempt >= uploadAttempts || !retryable) throw error;
      }
    }
  }
}
