import { createReadStream } from 'node:fs';
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import type { ContainerClient } from '@azure/storage-blob';
import { type Backend, withTimeout } from '../backends/backend.ts';
import { Agent as NodeHttpAgent, nodeHttps } from '../node-http.ts';
import type { ByteRange } from './data-store.ts';

/** How to reach the container: one of a connection string, an account key or a SAS token. */
export interface AzureConnection {
  readonly container: string;
  /** Blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1 for Azurite; unset uses the account's. */
  readonly endpoint: string | undefined;
  readonly account: string | undefined;
  readonly key: string | undefined;
  readonly sas: string | undefined;
  readonly connectionString: string | undefined;
}

/** The part of Microsoft's HTTP client (core-rest-pipeline's HttpClient) this store wraps. */
interface SharedHttpClient {
  sendRequest(request: { readonly url: string; agent?: HttpAgent | HttpsAgent }): Promise<unknown>;
}

/** A committed block, as the block list gives it. */
export interface CommittedBlock {
  readonly id: string;
  readonly size: number;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * The few block-blob operations the Azure store needs, over Microsoft's client. The client is loaded on
 * first use, so a server on another storage never loads it.
 */
export class AzureContainer implements Backend {
  readonly name = 'azure';
  readonly #connection: AzureConnection;
  #container: ContainerClient | undefined;
  /**
   * The store's own keep-alive agents: Microsoft's client otherwise shares process-wide ones with no way to
   * close them, and close() must leave no connection open.
   */
  #agents: { http: HttpAgent; https: HttpsAgent } | undefined;

  constructor(connection: AzureConnection) {
    this.#connection = connection;
  }

  async connect(): Promise<void> {
    if (!this.#container) {
      const { BlobServiceClient, StorageSharedKeyCredential, newPipeline } = await import(
        '@azure/storage-blob'
      );
      const { endpoint, account, key, sas, connectionString } = this.#connection;
      const url = endpoint ?? `https://${account ?? ''}.blob.core.windows.net`;
      let base: InstanceType<typeof BlobServiceClient>;
      if (connectionString !== undefined) base = BlobServiceClient.fromConnectionString(connectionString);
      else if (key !== undefined)
        base = new BlobServiceClient(url, new StorageSharedKeyCredential(account ?? '', key));
      else base = new BlobServiceClient(`${url}?${(sas ?? '').replace(/^\?/, '')}`);
      const agents = {
        http: new NodeHttpAgent({ keepAlive: true }),
        https: new (nodeHttps().Agent)({ keepAlive: true }),
      };
      this.#agents = agents;
      // The client's HTTP client is shared by the whole process: a client built on this pipeline sends its
      // requests through it with this store's own agents, which close() can then close. The pipeline keeps
      // its HTTP client in a field it fills on first use; without it (another version of the client),
      // requests go the usual way and idle connections close when the service drops them.
      const pipeline = newPipeline(base.credential) as ReturnType<typeof newPipeline> & {
        _coreHttpClient?: SharedHttpClient;
      };
      new BlobServiceClient(base.url, pipeline);
      const shared = pipeline._coreHttpClient;
      if (shared) {
        pipeline._coreHttpClient = {
          sendRequest: (request) => {
            request.agent ??= request.url.startsWith('https:') ? agents.https : agents.http;
            return shared.sendRequest(request);
          },
        };
      }
      const service = new BlobServiceClient(base.url, pipeline);
      this.#container = service.getContainerClient(this.#connection.container);
    }
    await this.#exists();
  }

  get #client(): ContainerClient {
    if (!this.#container) throw new Error('Azure storage used before prepare()');
    return this.#container;
  }

  async #exists(): Promise<void> {
    if (!(await this.#client.exists())) {
      throw new Error(`Azure container ${this.#connection.container} does not exist`);
    }
  }

  check(): Promise<void> {
    return withTimeout(this.#exists(), 5000, 'the Azure container did not answer within 5 s');
  }

  async close(): Promise<void> {
    this.#container = undefined;
    this.#agents?.http.destroy();
    this.#agents?.https.destroy();
    this.#agents = undefined;
  }

  /** The blob's committed blocks in order; none when the blob does not exist yet. */
  async committedBlocks(name: string): Promise<CommittedBlock[]> {
    try {
      const list = await this.#client.getBlockBlobClient(name).getBlockList('committed');
      return (list.committedBlocks ?? []).map((block) => ({ id: block.name, size: block.size }));
    } catch (error) {
      if (statusOf(error) === 404) return [];
      throw error;
    }
  }

  async exists(name: string): Promise<boolean> {
    return this.#client.getBlockBlobClient(name).exists();
  }

  /** When the blob last changed (Unix milliseconds), or undefined when it does not exist. */
  async modifiedAt(name: string): Promise<number | undefined> {
    try {
      return (await this.#client.getBlockBlobClient(name).getProperties()).lastModified?.getTime();
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** Every blob under a prefix, with when it last changed. */
  async *list(prefix: string): AsyncGenerator<{ name: string; modifiedAt: number }> {
    for await (const blob of this.#client.listBlobsFlat({ prefix })) {
      yield { name: blob.name, modifiedAt: blob.properties.lastModified?.getTime() ?? 0 };
    }
  }

  /** Puts a small blob (a record copy) in one request. */
  async putBytes(name: string, bytes: Buffer): Promise<void> {
    await this.#client.getBlockBlobClient(name).upload(bytes, bytes.length);
  }

  /** A small blob's bytes (a record copy), or undefined when it is missing. */
  async readSmall(name: string): Promise<Buffer | undefined> {
    try {
      return await this.#client.getBlockBlobClient(name).downloadToBuffer();
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  /** Removes a blob; a missing one is not an error. */
  async removeBlob(name: string): Promise<void> {
    await this.#client.getBlockBlobClient(name).deleteIfExists();
  }

  /** Stages the first `length` bytes of a local file as a block (re-read from the file on a retry). */
  async stageFile(name: string, blockId: string, path: string, length: number): Promise<void> {
    await this.#client
      .getBlockBlobClient(name)
      .stageBlock(blockId, () => createReadStream(path, { start: 0, end: length - 1 }), length);
  }

  /**
   * Stages `count` bytes of another blob of the container, from `offset`, as a block: Azure copies them, no
   * byte passes through this process. The source is read through a short-lived read-only SAS when the store
   * holds the account key, else through the store's own SAS.
   */
  async stageFromBlob(
    name: string,
    blockId: string,
    source: string,
    offset: number,
    count: number,
  ): Promise<void> {
    const sourceBlob = this.#client.getBlockBlobClient(source);
    let url = sourceBlob.url;
    const { StorageSharedKeyCredential, BlobSASPermissions } = await import('@azure/storage-blob');
    if (sourceBlob.credential instanceof StorageSharedKeyCredential) {
      url = await sourceBlob.generateSasUrl({
        permissions: BlobSASPermissions.parse('r'),
        expiresOn: new Date(Date.now() + 60 * 60 * 1000),
      });
    }
    await this.#client.getBlockBlobClient(name).stageBlockFromURL(blockId, url, offset, count);
  }

  /** Makes the blob exactly these blocks, in order; staged blocks left out are discarded by Azure. */
  async commit(name: string, blockIds: readonly string[]): Promise<void> {
    await this.#client.getBlockBlobClient(name).commitBlockList([...blockIds]);
  }

  /** The blob's bytes, whole or one inclusive range; rejects when the blob is missing. */
  async read(name: string, range?: ByteRange): Promise<Readable> {
    const response = await this.#client
      .getBlockBlobClient(name)
      .download(range?.start ?? 0, range ? range.end - range.start + 1 : undefined);
    const body = response.readableStreamBody;
    if (!body) throw new Error(`Azure returned no body for ${name}`);
    return body as Readable;
  }

  /** Removes the blob with its staged blocks; a missing blob is not an error. */
  async remove(name: string): Promise<void> {
    const blob = this.#client.getBlockBlobClient(name);
    const removed = await blob.deleteIfExists();
    if (removed.succeeded) return;
    // Blocks staged for a blob never committed wait a week for Azure to drop them: committing none and
    // deleting drops them now.
    const staged = await blob.getBlockList('uncommitted').catch(() => undefined);
    if ((staged?.uncommittedBlocks ?? []).length > 0) {
      await blob.commitBlockList([]);
      await blob.deleteIfExists();
    }
  }
}
