import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import type { AzureContainer, CommittedBlock } from './azure-container.ts';
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
import { PartUploads } from './part-uploads.ts';
import { azureRecordBucket, RecordCopyObjects } from './record-copy-objects.ts';

export interface AzureDataStoreOptions {
  readonly container: AzureContainer;
  /** Prepended to every blob name, e.g. `uploads/`. */
  readonly prefix: string;
  /** Size of the blocks an upload starts with; later blocks grow (see {@link blockSizeAt}). */
  readonly blockSize: number;
  /** Blocks of one append staged at the same time (each waits in its own temporary file). */
  readonly blockConcurrency: number;
  readonly bufferDir: string | undefined;
  readonly dirStructure: string;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Azure's largest block. */
export const azureMaxBlockSize = 4000 * 1024 * 1024;
/** Blocks at one size before the size doubles: 50 000 committed blocks then reach about 150 TiB. */
const blocksPerSize = 1000;

/**
 * The size of a block that starts at `start`: the configured size, doubled each time the upload has grown
 * past 1000 blocks of the current size, up to Azure's 4000 MiB. Blocks need not share a size: each block id
 * records its start and size.
 */
export function blockSizeAt(start: number, configured: number): number {
  let size = configured;
  while (size < azureMaxBlockSize && start >= size * blocksPerSize) size *= 2;
  return Math.min(size, azureMaxBlockSize);
}

const offsetDigits = 16;

/** A block of the upload: its id says which bytes it holds. */
interface Block {
  readonly id: string;
  readonly start: number;
  readonly size: number;
}

/** Block ids of one blob must all have the same length: start and size zero-padded, plus a random tag. */
function blockId(start: number, size: number): string {
  const text = `${String(start).padStart(offsetDigits, '0')}-${String(size).padStart(offsetDigits, '0')}-${randomBytes(4).toString('hex')}`;
  return Buffer.from(text).toString('base64');
}

function parseBlock(block: CommittedBlock): Block | undefined {
  const match = /^(\d{16})-(\d{16})-[0-9a-f]{8}$/.exec(Buffer.from(block.id, 'base64').toString());
  if (!match) return undefined;
  return { id: block.id, start: Number(match[1]), size: Number(match[2]) };
}

/**
 * Upload bytes in Azure Blob Storage, as a block blob on the upload's own name.
 *
 * The upload's stored bytes are the blob's committed blocks: each append stages its body as blocks (gathered
 * on disk, a few staged at once) and commits the list of the blocks below its offset plus the new ones, so
 * the blob always holds a prefix of the upload and any instance, or a restarted one, continues from the block
 * list. A block id records the block's start and size. The last block, when smaller than a full block, is
 * downloaded and staged again with the next append's bytes (at most one block's download), which keeps the
 * count of committed blocks (Azure allows 50 000) low whatever the clients' chunk sizes; the block that
 * straddles an append's offset is cut the same way, so bytes past the record never end up in the upload.
 * Concatenation copies the sources' bytes into blocks inside Azure.
 */
export class AzureDataStore implements ConcatenatingDataStore, FinishingDataStore, RecordCopyingDataStore {
  readonly name = 'azure';
  readonly #options: AzureDataStoreOptions;
  readonly #bufferDir: string;
  readonly #copies: RecordCopyObjects;

  constructor(options: AzureDataStoreOptions) {
    this.#options = options;
    this.#bufferDir = options.bufferDir ?? tmpdir();
    this.#copies = new RecordCopyObjects(azureRecordBucket(options.container), options.prefix);
  }

  /** The store's backend: /health reports it and shutdown closes it. */
  get backend(): AzureContainer {
    return this.#options.container;
  }

  get #container(): AzureContainer {
    return this.#options.container;
  }

  async prepare(): Promise<void> {
    await this.#container.connect();
  }

  async create(placement: NewUploadPlacement): Promise<string> {
    // Nothing is stored yet: the first append commits the first blocks.
    return uploadLocation(this.#options.dirStructure, placement.createdAt, this.#options.env, placement.id);
  }

  #name(location: string): string {
    return `${this.#options.prefix}${location}`;
  }

  describe(location: string): string {
    return this.#name(location);
  }

  /** The committed blocks, checked to hold the upload's bytes from 0 without a gap. */
  async #blocks(name: string): Promise<Block[]> {
    const blocks: Block[] = [];
    let covered = 0;
    for (const committed of await this.#container.committedBlocks(name)) {
      const block = parseBlock(committed);
      if (!block || block.start !== covered || block.size !== committed.size) {
        throw new Error(`Azure blob ${name} has a block Wharf did not write at ${covered}`);
      }
      covered += block.size;
      blocks.push(block);
    }
    return blocks;
  }

  async append(location: string, offset: number, source: Readable): Promise<AppendResult> {
    const name = this.#name(location);
    let part: PartFile | undefined;
    try {
      const blocks = await this.#blocks(name);
      // The blocks wholly below the offset stay; the one that straddles it, or a short last one, is reloaded.
      const kept = blocks.filter((block) => block.start + block.size <= offset);
      const covered = kept.reduce((sum, block) => sum + block.size, 0);
      const straddling = blocks.find((block) => block.start < offset && block.start + block.size > offset);
      const last = kept.at(-1);
      const short =
        !straddling && last && last.size < blockSizeAt(last.start, this.#options.blockSize)
          ? last
          : undefined;
      if (!straddling && covered < offset) {
        throw new Error(`Azure blob ${name} holds ${covered} bytes where the offset needs ${offset}`);
      }
      const reload = straddling ?? short;
      if (short) kept.pop();
      let start = reload?.start ?? offset;
      part = await PartFile.create(this.#bufferDir);
      if (reload) {
        const length = offset - reload.start;
        const got = await part.writeFrom(
          await this.#container.read(name, { start: reload.start, end: offset - 1 }),
        );
        if (got !== length) throw new Error(`Azure blob ${name} gave ${got} of ${length} bytes`);
      }

      const uploads = new PartUploads(this.#options.blockConcurrency);
      const staged: Block[] = [];
      const stage = async (full: PartFile): Promise<void> => {
        const block = { id: blockId(start, full.size), start, size: full.size };
        const number = staged.push(block);
        start += block.size;
        await full.close();
        await uploads.add(number, async () => {
          try {
            await this.#container.stageFile(name, block.id, full.path, block.size);
            return { partNumber: number, size: block.size, etag: '' };
          } finally {
            await full.remove();
          }
        });
      };
      let received = 0;
      let failure: unknown;
      try {
        for await (const chunk of source as AsyncIterable<Buffer>) {
          received += chunk.length;
          let rest = chunk;
          while (rest.length > 0) {
            const size = blockSizeAt(start, this.#options.blockSize);
            const piece = rest.subarray(0, size - part.size);
            rest = rest.subarray(piece.length);
            await part.write(piece);
            if (part.size < size) continue;
            const full = part;
            part = await PartFile.create(this.#bufferDir);
            await stage(full);
            if (uploads.failure) throw uploads.failure.error;
          }
        }
      } catch (error) {
        failure = error;
      }
      // What arrived before a failed body is kept; a short block reloaded for nothing is left as it was.
      if (part.size > 0 && !uploads.failure && (received > 0 || straddling)) {
        const tail = part;
        part = undefined;
        await stage(tail);
      }
      await uploads.settle();
      const good = uploads.failure ? staged.slice(0, uploads.failure.partNumber - 1) : staged;
      if (uploads.failure) failure ??= uploads.failure.error;
      if (staged.length === 0 && short) kept.push(short);
      const cut = blocks.length !== kept.length;
      if (good.length > 0 || (staged.length === 0 && cut)) {
        await this.#container.commit(
          name,
          [...kept, ...good].map((block) => block.id),
        );
      }
      const end = good.at(-1);
      const durable = end ? end.start + end.size : offset;
      const bytesWritten = Math.max(0, durable - offset);
      return failure === undefined ? { bytesWritten } : { bytesWritten, error: failure };
    } catch (error) {
      return { bytesWritten: 0, error };
    } finally {
      await part?.remove();
    }
  }

  /** Commits exactly the bytes [0, length): what the append being undone added is dropped. */
  async truncate(location: string, length: number): Promise<void> {
    const result = await this.append(location, length, Readable.from([]));
    if (result.error !== undefined) throw result.error;
  }

  /** The blob already is the upload: finishing drops what lies past `length` and creates an empty blob. */
  async finish(location: string, length: number): Promise<void> {
    await this.truncate(location, length);
    if (length === 0) await this.#container.commit(this.#name(location), []);
  }

  /**
   * The blob is the upload from its first append on: it is sealed once it holds exactly `length` bytes (what
   * finish would leave), and exists (an empty upload's blob is created by finish).
   */
  async isFinished(location: string, length: number): Promise<boolean> {
    const blocks = await this.#container.committedBlocks(this.#name(location));
    if (blocks.length === 0) return length === 0 && (await this.#container.exists(this.#name(location)));
    return blocks.reduce((sum, block) => sum + block.size, 0) === length;
  }

  async read(location: string, range?: ByteRange): Promise<Readable> {
    return this.#container.read(this.#name(location), range);
  }

  async remove(location: string): Promise<void> {
    await this.#container.remove(this.#name(location));
  }

  /** The committed blocks: the upload's bytes from 0, finished or not. */
  async stored(location: string): Promise<StoredData> {
    const name = this.#name(location);
    const blocks = await this.#blocks(name);
    const length = blocks.reduce((sum, block) => sum + block.size, 0);
    return { length, modifiedAt: await this.#container.modifiedAt(name) };
  }

  async *storedLocations(): AsyncIterable<{ location: string; modifiedAt: number }> {
    const fixed = fixedDirPrefix(this.#options.dirStructure);
    const { pattern } = layoutPattern(this.#options.dirStructure);
    const { prefix } = this.#options;
    for await (const blob of this.#container.list(`${prefix}${fixed === '' ? '' : `${fixed}/`}`)) {
      const location = blob.name.slice(prefix.length);
      if (!location.startsWith('.wharf-') && pattern.test(location)) {
        yield { location, modifiedAt: blob.modifiedAt };
      }
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
   * Builds the target blob from the sources' bytes inside Azure (`Put Block From URL`, ranges of at most one
   * block each), then commits them in order; no byte passes through this process.
   */
  async concatenate(target: string, sources: readonly { location: string; length: number }[]): Promise<void> {
    const name = this.#name(target);
    const blocks: Block[] = [];
    let start = 0;
    for (const source of sources) {
      for (let from = 0; from < source.length; ) {
        const size = Math.min(blockSizeAt(start, this.#options.blockSize), source.length - from);
        const block = { id: blockId(start, size), start, size };
        await this.#container.stageFromBlob(name, block.id, this.#name(source.location), from, size);
        blocks.push(block);
        from += size;
        start += size;
      }
    }
    await this.#container.commit(
      name,
      blocks.map((block) => block.id),
    );
  }
}
