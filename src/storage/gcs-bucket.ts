import type { Agent } from 'node:http';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Bucket, File, Storage } from '@google-cloud/storage';
import { type Backend, withTimeout } from '../backends/backend.ts';
import type { ByteRange } from './data-store.ts';

/** How to reach the bucket. Credentials come from the key file or, without one, as Google's client finds them. */
export interface GcsConnection {
  readonly bucket: string;
  /** API endpoint, e.g. http://127.0.0.1:4443 for fake-gcs-server; unset uses Google's. */
  readonly endpoint: string | undefined;
  readonly projectId: string | undefined;
  /** A service-account key file (JSON); unset uses Application Default Credentials. */
  readonly keyFile: string | undefined;
}

/** An object in the bucket, as a listing shows it. */
export interface GcsObject {
  readonly name: string;
  readonly size: number;
  /** Unix milliseconds of the last change. */
  readonly modifiedAt: number;
}

/** GCS composes at most 32 objects in one request. */
export const composeLimit = 32;

function isNotFound(error: unknown): boolean {
  return (error as { code?: unknown }).code === 404;
}

/**
 * The few bucket operations the GCS store needs, over Google's client. The client is loaded on first use,
 * so a server on another storage never loads it.
 */
export class GcsBucket implements Backend {
  readonly name = 'gcs';
  readonly #connection: GcsConnection;
  #storage: Storage | undefined;
  #bucket: Bucket | undefined;

  constructor(connection: GcsConnection) {
    this.#connection = connection;
  }

  async connect(): Promise<void> {
    if (!this.#bucket) {
      const { Storage } = await import('@google-cloud/storage');
      const { endpoint, projectId, keyFile } = this.#connection;
      this.#storage = new Storage({
        ...(endpoint !== undefined ? { apiEndpoint: endpoint } : {}),
        ...(projectId !== undefined ? { projectId } : {}),
        ...(keyFile !== undefined ? { keyFilename: keyFile } : {}),
      });
      this.#bucket = this.#storage.bucket(this.#connection.bucket);
    }
    await this.#exists();
  }

  get #handle(): Bucket {
    if (!this.#bucket) throw new Error('GCS storage used before prepare()');
    return this.#bucket;
  }

  async #exists(): Promise<void> {
    const [exists] = await this.#handle.exists();
    if (!exists) throw new Error(`GCS bucket ${this.#connection.bucket} does not exist`);
  }

  check(): Promise<void> {
    return withTimeout(this.#exists(), 5000, 'the GCS bucket did not answer within 5 s');
  }

  /**
   * Google's client has no close(): its requests go through keep-alive agents pooled by its HTTP layer
   * (teeny-request) for the whole process. Their idle sockets are closed here; sockets of requests still
   * running (another client in the same process) are left alone.
   */
  async close(): Promise<void> {
    if (!this.#storage) return;
    this.#bucket = undefined;
    this.#storage = undefined;
    try {
      const require = createRequire(createRequire(import.meta.url).resolve('@google-cloud/storage'));
      const { pool } = require('teeny-request/build/src/agents.js') as { pool?: Map<string, Agent> };
      for (const agent of pool?.values() ?? []) {
        for (const sockets of Object.values(agent.freeSockets))
          for (const socket of sockets ?? []) socket.destroy();
      }
    } catch {
      // Another layout of Google's client: its idle sockets then close on their own.
    }
  }

  #file(name: string): File {
    return this.#handle.file(name);
  }

  async list(prefix: string): Promise<GcsObject[]> {
    const [files] = await this.#handle.getFiles({ prefix, autoPaginate: true });
    return files.map((file) => ({
      name: file.name,
      size: Number(file.metadata.size ?? 0),
      modifiedAt: Date.parse(String(file.metadata.updated ?? '')) || 0,
    }));
  }

  async size(name: string): Promise<number | undefined> {
    return (await this.stat(name))?.size;
  }

  async stat(name: string): Promise<GcsObject | undefined> {
    try {
      const [metadata] = await this.#file(name).getMetadata();
      return {
        name,
        size: Number(metadata.size ?? 0),
        modifiedAt: Date.parse(String(metadata.updated ?? '')) || 0,
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Puts a small object (a record copy) in one request. */
  async putBytes(name: string, bytes: Buffer): Promise<void> {
    await this.#file(name).save(bytes, { resumable: false, contentType: 'application/json' });
  }

  /** A small object's bytes (a record copy), or undefined when it is missing. */
  async readSmall(name: string): Promise<Buffer | undefined> {
    try {
      const [bytes] = await this.#file(name).download({ validation: false });
      return bytes;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Uploads the first `length` bytes of a local file as one object (a single request, no session). */
  async putFile(name: string, path: string, length: number): Promise<void> {
    if (length === 0) {
      await this.putEmpty(name);
      return;
    }
    await this.#handle.upload(path, {
      destination: name,
      resumable: false,
      metadata: { contentType: 'application/octet-stream' },
    });
  }

  async putEmpty(name: string): Promise<void> {
    await this.#file(name).save(Buffer.alloc(0), { resumable: false });
  }

  /**
   * The object's bytes, whole or one inclusive range. The request starts when the stream is first read; a
   * missing object fails the stream then.
   */
  async read(name: string, range?: ByteRange): Promise<Readable> {
    return this.#file(name).createReadStream({
      validation: false,
      ...(range ? { start: range.start, end: range.end } : {}),
    });
  }

  /** Composes up to {@link composeLimit} objects, in order, into `target`. */
  async compose(sources: readonly string[], target: string): Promise<void> {
    await this.#handle.combine(
      sources.map((source) => this.#file(source)),
      this.#file(target),
    );
  }

  /** Removes an object; a missing object is not an error. */
  async remove(name: string): Promise<void> {
    try {
      await this.#file(name).delete();
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}
