import type { Readable } from 'node:stream';
import type { Backend } from '../backends/backend.ts';
import { WharfError } from '../errors.ts';
import type { InfoStore } from '../info/info-store.ts';
import { InfoConflictError } from '../info/info-store.ts';
import type { Lock, Locker } from '../locks/locker.ts';
import { LockTimeoutError } from '../locks/locker.ts';
import {
  canConcatenate,
  canFinish,
  type DataStore,
  keepsRecordCopies,
  type RecordCopyingDataStore,
} from '../storage/data-store.ts';
import type { UploadActivity, WriteInProgress } from './activity.ts';
import type { BodyMeter } from './body-meter.ts';
import type { CheckAnswer, DescribeRequest, UploadObserver } from './events.ts';
import { isValidLocation, isValidUploadId, newUploadId } from './ids.ts';
import { RecordCopyingInfoStore } from './record-copies.ts';
import { isComplete, isExpired, type UploadRecord } from './upload.ts';

export interface UploadServiceOptions {
  readonly dataStore: DataStore;
  readonly infoStore: InfoStore;
  readonly locker: Locker;
  /** Shared services the stores use: reported on /health, closed on shutdown. */
  readonly backends?: readonly Backend[];
  readonly observer: UploadObserver;
  /** Counters and live progress (metrics, admin stream); absent costs nothing. */
  readonly activity?: UploadActivity;
  /** Bytes; 0 = unlimited. */
  readonly maxFileSize: number;
  /** Bytes per request body; 0 = unlimited. */
  readonly maxBodySize: number;
  readonly allowEmpty: boolean;
  readonly removeParts: boolean;
  /** 0 = uploads never expire. */
  readonly expirationMs: number;
  readonly lockTimeoutMs: number;
  readonly allowUnfinishedConcatenation: boolean;
  /**
   * Keep a copy of each record beside its bytes (when the data store can) and rebuild lost records from it:
   * for info stores that can come back empty (Redis, PostgreSQL).
   */
  readonly keepRecordCopies?: boolean;
  readonly logger: {
    warn(object: object, message: string): void;
    error(object: object, message: string): void;
  };
  readonly now?: () => number;
}

export interface CreateRequest {
  /** null with deferred length and for finals. */
  readonly length: number | null;
  readonly deferLength: boolean;
  readonly metadataHeader: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  readonly concat:
    | { readonly kind: 'partial'; readonly header: string }
    | { readonly kind: 'final'; readonly header: string; readonly partIds: readonly string[] }
    | undefined;
  readonly describeRequest: DescribeRequest;
  /** creation-with-upload: called once the upload exists; returns the metered body to store. */
  readonly body?: BodyOpener;
  readonly checksum?: WriteRequest['checksum'];
  /**
   * Receives the headers (and body) answering pre-create hooks add to the normal answer, and those of
   * pre-finish hooks when the creation body completes the upload.
   */
  readonly onHookResponse?: (response: NonNullable<CheckAnswer['response']>) => void;
}

export type HookResponse = NonNullable<CheckAnswer['response']>;

/** Two answers to one request (pre-create then pre-finish): the later one's headers and body win. */
function mergedResponse(
  first: HookResponse | undefined,
  second: HookResponse | undefined,
): HookResponse | undefined {
  if (first === undefined || second === undefined) return first ?? second;
  const body = second.body ?? first.body;
  return { headers: { ...first.headers, ...second.headers }, ...(body !== undefined ? { body } : {}) };
}

/** The "request" of a HEAD whose caller did not describe it. */
const headRequest: DescribeRequest = () => ({ uri: '', method: 'HEAD', remoteAddr: null, headers: {} });

/** The "request" of an event no client caused (the expiration sweep). */
const expirySweep: DescribeRequest = () => ({ uri: '', method: 'SWEEP', remoteAddr: null, headers: {} });

/** Upload-Metadata for metadata a hook rewrote: `key base64value` pairs, a key alone for an empty value. */
function encodeMetadata(metadata: Readonly<Record<string, string>>): string {
  return Object.entries(metadata)
    .map(([key, value]) => (value === '' ? key : `${key} ${Buffer.from(value, 'utf8').toString('base64')}`))
    .join(',');
}

/** Opens the request body through a meter with the given limit (and sends 100 Continue if expected). */
export type BodyOpener = (limit: number) => BodyMeter;

export interface WriteRequest {
  readonly offset: number;
  /** Upload-Length sent on a PATCH (deferred length). */
  readonly declaredLength: number | undefined;
  /** Content-Length of the body, when the client declared one. */
  readonly contentLength: number | undefined;
  readonly checksum: { readonly algorithm: string; readonly digest: Buffer } | undefined;
  readonly openBody: BodyOpener;
  readonly describeRequest: DescribeRequest;
}

export interface BackendHealth {
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
}

function isClosable(value: object): value is { close(): Promise<void> } {
  return typeof (value as { close?: unknown }).close === 'function';
}

export interface WriteOutcome {
  readonly upload: UploadRecord;
  /** Set when the body stopped early: the bytes before it were kept and the offset says so. */
  readonly interruption?: WharfError;
  /** Headers (and a body) answering pre-finish hooks add to the final PATCH's answer. */
  readonly hookResponse?: HookResponse;
}

/**
 * The upload lifecycle: create, write, finish, concatenate, terminate, expire. It owns the record, takes
 * the per-upload lock, and turns each step into lifecycle events for the hooks engine.
 */
export class UploadService {
  readonly #options: UploadServiceOptions;
  readonly #data: DataStore;
  readonly #info: InfoStore;
  readonly #now: () => number;
  /** The data store, when it keeps the record copies (see record-copies.ts). */
  readonly #copies: RecordCopyingDataStore | undefined;
  /** Bodies being written now (only tracked when someone listens to the activity). */
  readonly #writing = new Map<string, { upload: UploadRecord; meter: BodyMeter; from: number }>();

  constructor(options: UploadServiceOptions) {
    this.#options = options;
    this.#data = options.dataStore;
    this.#now = options.now ?? Date.now;
    this.#copies = options.keepRecordCopies && keepsRecordCopies(this.#data) ? this.#data : undefined;
    this.#info = this.#copies
      ? new RecordCopyingInfoStore(options.infoStore, this.#copies, {
          expirationMs: options.expirationMs,
          now: this.#now,
          logger: options.logger,
        })
      : options.infoStore;
  }

  get dataStore(): DataStore {
    return this.#data;
  }

  /** The bodies being received now and how far each got (for live progress). */
  *writesInProgress(): Iterable<WriteInProgress> {
    for (const { upload, meter, from } of this.#writing.values()) {
      yield { upload, offset: from + meter.bytesSeen };
    }
  }

  /** Creates folders, tables or buckets the stores need. Called once before serving. */
  async prepare(): Promise<void> {
    await this.#data.prepare();
    await this.#info.prepare();
  }

  /** Checks every shared backend; resolves to one entry per backend, never rejects. */
  async health(): Promise<BackendHealth[]> {
    return Promise.all(
      (this.#options.backends ?? []).map(async (backend): Promise<BackendHealth> => {
        try {
          await backend.check();
          return { name: backend.name, ok: true };
        } catch (error) {
          return { name: backend.name, ok: false, error: (error as Error).message };
        }
      }),
    );
  }

  /** Releases connections to shared backends and the files the stores hold open. Called once, after the last request. */
  async close(): Promise<void> {
    const { locker } = this.#options;
    if (isClosable(locker)) await locker.close();
    await Promise.all((this.#options.backends ?? []).map((backend) => backend.close()));
    await this.#data.close?.();
    await this.#info.close?.();
  }

  /** The record, or a 404/410 WharfError. Ids are validated before any store sees them. */
  async get(id: string): Promise<UploadRecord> {
    if (!isValidUploadId(id)) throw new WharfError('ERR_UPLOAD_NOT_FOUND');
    const record = await this.#info.get(id);
    if (!record || record.storage !== this.#data.name) throw new WharfError('ERR_UPLOAD_NOT_FOUND');
    if (isExpired(record, this.#now())) throw new WharfError('ERR_UPLOAD_EXPIRED');
    return record;
  }

  async #lock(id: string, onReleaseRequest: () => void): Promise<Lock> {
    try {
      return await this.#options.locker.acquire(id, {
        onReleaseRequest,
        timeoutMs: this.#options.lockTimeoutMs,
      });
    } catch (error) {
      if (error instanceof LockTimeoutError) throw new WharfError('ERR_LOCK_TIMEOUT', { cause: error });
      throw error;
    }
  }

  /**
   * Takes the upload's lock (interrupting a stale writer) and reads the settled record: an upload whose
   * sealed object is in place is finished first (see {@link #finishSealed}).
   */
  async settle(id: string, describeRequest: DescribeRequest = headRequest): Promise<UploadRecord> {
    const lock = await this.#lock(id, () => undefined);
    try {
      const record = await this.get(id);
      if (this.#mayBeSealed(record)) {
        // A refusing pre-finish hook marked the upload failed, which the record now shows.
        await this.#finishSealed(record, describeRequest).catch((error: unknown) => {
          if (!(error instanceof WharfError) || record.failure == null) throw error;
        });
      }
      return record;
    } finally {
      await lock.release();
    }
  }

  /** The record for a download: like {@link get}, but an upload whose object was sealed is finished first. */
  async getForDownload(id: string, describeRequest: DescribeRequest): Promise<UploadRecord> {
    const record = await this.get(id);
    return this.#mayBeSealed(record) ? this.settle(id, describeRequest) : record;
  }

  /** Whether the record may lag behind its store: a known length not reached, in a store that seals. */
  #mayBeSealed(record: UploadRecord): boolean {
    return (
      canFinish(this.#data) &&
      !record.isFinal &&
      record.length !== null &&
      !isComplete(record) &&
      (record.failure ?? '') === ''
    );
  }

  /**
   * A store that seals (S3) completes the object before the record says so (see #receive): a process killed,
   * or a record write that failed, between the two leaves a complete object behind an unfinished record,
   * which no append can continue. Whoever holds the lock next (HEAD, the retried PATCH, GET) finishes the
   * record as the cut PATCH would have: pre-finish, then post-finish, once, since the record then says
   * complete. Resolves to whether it did, with what answering pre-finish hooks add to the answer.
   */
  async #finishSealed(
    record: UploadRecord,
    describeRequest: DescribeRequest,
  ): Promise<{ finished: boolean; hookResponse?: HookResponse }> {
    const length = record.length;
    if (!canFinish(this.#data) || length === null) return { finished: false };
    // Only a look: a store that cannot answer now (S3 down) leaves the record as it is, and HEAD still answers.
    const sealed = await this.#data.isFinished(record.path, length).catch((error: unknown) => {
      this.#options.logger.warn(
        { err: error, id: record.id },
        'could not check whether the upload was sealed',
      );
      return false;
    });
    if (!sealed) return { finished: false };
    this.#options.logger.warn(
      { id: record.id, offset: record.offset, length },
      'finishing an upload whose object was sealed but not recorded (a finishing request was cut)',
    );
    // Removes what the cut finish may have left (tails, the local copy).
    await this.#seal(record.path, length);
    const expected = record.version;
    record.offset = length;
    record.expiresAt = null;
    await this.#info.put(record, expected);
    const hookResponse = await this.#checkFinish(record, describeRequest);
    await this.#finish(record, describeRequest);
    return hookResponse !== undefined ? { finished: true, hookResponse } : { finished: true };
  }

  #expiry(): number | null {
    return this.#options.expirationMs > 0 ? this.#now() + this.#options.expirationMs : null;
  }

  #checkFileSize(length: number): void {
    if (this.#options.maxFileSize > 0 && length > this.#options.maxFileSize) {
      throw new WharfError('ERR_MAX_SIZE_EXCEEDED', {
        message: `upload is larger than the maximum size of ${this.#options.maxFileSize} bytes`,
      });
    }
  }

  async create(request: CreateRequest): Promise<UploadRecord> {
    const { concat } = request;
    let length = request.length;
    let parts: UploadRecord[] = [];
    if (length !== null) {
      this.#checkFileSize(length);
      if (length === 0 && !this.#options.allowEmpty) throw new WharfError('ERR_EMPTY_UPLOAD_REFUSED');
    }
    if (concat?.kind === 'final') {
      parts = await this.#loadParts(concat.partIds);
      const lengths = parts.map((part) => part.length);
      length = lengths.every((partLength) => partLength !== null)
        ? lengths.reduce<number>((sum, partLength) => sum + (partLength ?? 0), 0)
        : null;
      if (length !== null) this.#checkFileSize(length);
    }

    const createdAt = this.#now();
    const id = newUploadId();
    let draft: UploadRecord = {
      id,
      offset: 0,
      length,
      path: '',
      createdAt,
      metadataHeader: request.metadataHeader,
      metadata: request.metadata,
      isPartial: concat?.kind === 'partial',
      isFinal: concat?.kind === 'final',
      parts: concat?.kind === 'final' ? concat.partIds : null,
      concatHeader: concat?.header ?? null,
      pendingFinals: [],
      expiresAt: null,
      storage: this.#data.name,
      version: 0,
    };
    // pre-create sees the upload before anything is stored, so a rejection leaves no trace.
    let chosenLocation: string | undefined;
    let hookResponse: HookResponse | undefined;
    if (this.#options.observer.listens('pre-create')) {
      const answer = await this.#check('pre-create', draft, request.describeRequest);
      if (answer?.change !== undefined) {
        draft = await this.#changed(draft, answer.change);
        chosenLocation = answer.change.path;
      }
      hookResponse = answer?.response;
    }

    let location: string;
    try {
      location = await this.#data.create({
        id: draft.id,
        createdAt,
        ...(chosenLocation !== undefined ? { location: chosenLocation } : {}),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new WharfError('ERR_UPLOAD_ID_TAKEN', {
          message: 'a hook chose a storage path or id that is already in use',
          cause: error,
        });
      }
      throw error;
    }
    if (length === 0 && concat?.kind !== 'final') await this.#seal(location, 0);
    const record: UploadRecord = {
      ...draft,
      path: location,
      expiresAt: length === 0 ? null : this.#expiry(),
    };
    try {
      await this.#info.put(record, null);
    } catch (error) {
      await this.#data.remove(location);
      if (error instanceof InfoConflictError) throw new WharfError('ERR_UPLOAD_ID_TAKEN', { cause: error });
      throw error;
    }
    this.#options.activity?.created(record);

    if (concat?.kind === 'final') {
      if (hookResponse !== undefined) request.onHookResponse?.(hookResponse);
      await this.#startFinal(record, parts, request.describeRequest);
      return record;
    }

    if (request.body && (length === null || length > 0)) {
      const { interruption } = await this.#receive(record, request.body, request.checksum, undefined);
      // A refused creation body leaves no upload behind; any other interruption keeps what arrived.
      if (interruption && (interruption.status === 413 || interruption.status === 460)) {
        await this.#removeQuietly(record.id);
        throw interruption;
      }
    }
    if (isComplete(record)) {
      hookResponse = mergedResponse(hookResponse, await this.#checkFinish(record, request.describeRequest));
      await this.#finish(record, request.describeRequest);
    } else {
      this.#notify('post-create', record, request.describeRequest);
    }
    if (hookResponse !== undefined) request.onHookResponse?.(hookResponse);
    return record;
  }

  /** Applies a pre-create hook's `changeUpload`: the id is validated and must be free; metadata is re-encoded. */
  async #changed(draft: UploadRecord, change: NonNullable<CheckAnswer['change']>): Promise<UploadRecord> {
    let changed = draft;
    if (change.id !== undefined && change.id !== draft.id) {
      if (!isValidUploadId(change.id)) {
        throw new WharfError('ERR_HOOK_ANSWER_INVALID', {
          message: `a hook chose the invalid upload id ${JSON.stringify(change.id)}`,
        });
      }
      if ((await this.#info.get(change.id)) !== undefined) throw new WharfError('ERR_UPLOAD_ID_TAKEN');
      changed = { ...changed, id: change.id };
    }
    if (change.path !== undefined && !isValidLocation(change.path)) {
      throw new WharfError('ERR_HOOK_ANSWER_INVALID', {
        message: `a hook chose the invalid storage path ${JSON.stringify(change.path)}`,
      });
    }
    if (change.metadata !== undefined) {
      const metadata = { ...change.metadata };
      changed = { ...changed, metadata, metadataHeader: encodeMetadata(metadata) };
    }
    return changed;
  }

  async #loadParts(partIds: readonly string[]): Promise<UploadRecord[]> {
    const parts: UploadRecord[] = [];
    for (const partId of partIds) {
      const part = await this.get(partId);
      if (!part.isPartial) {
        throw new WharfError('ERR_UPLOAD_NOT_PARTIAL', {
          message: `upload ${partId} is not a partial upload`,
        });
      }
      if (!isComplete(part) && !this.#options.allowUnfinishedConcatenation) {
        throw new WharfError('ERR_UPLOAD_NOT_FINISHED', {
          message: `partial upload ${partId} is not finished`,
        });
      }
      parts.push(part);
    }
    return parts;
  }

  /** A final whose parts are all complete is built now; otherwise each unfinished part remembers it. */
  async #startFinal(
    final: UploadRecord,
    parts: readonly UploadRecord[],
    describeRequest: DescribeRequest,
  ): Promise<void> {
    const unfinished = [...new Set(parts.filter((part) => !isComplete(part)).map((part) => part.id))];
    for (const partId of unfinished) {
      const lock = await this.#lock(partId, () => undefined);
      try {
        const part = await this.get(partId);
        if (!isComplete(part) && !part.pendingFinals.includes(final.id)) {
          const expected = part.version;
          part.pendingFinals = [...part.pendingFinals, final.id];
          await this.#info.put(part, expected);
        }
      } finally {
        await lock.release();
      }
    }
    await this.#tryBuildFinal(final.id, describeRequest);
  }

  /** Builds the final upload if every part is complete; safe to call any number of times. */
  async #tryBuildFinal(finalId: string, describeRequest: DescribeRequest): Promise<void> {
    const lock = await this.#lock(finalId, () => undefined);
    let final: UploadRecord;
    try {
      final = await this.get(finalId);
      if (isComplete(final) || !final.parts) return;
      const parts = await Promise.all(final.parts.map((partId) => this.get(partId)));
      if (!parts.every(isComplete)) return;
      const length = parts.reduce((sum, part) => sum + (part.length ?? 0), 0);
      this.#checkFileSize(length);
      if (!canConcatenate(this.#data)) throw new WharfError('ERR_EXTENSION_DISABLED');
      await this.#data.concatenate(
        final.path,
        parts.map((part) => ({ location: part.path, length: part.length ?? 0 })),
      );
      const expected = final.version;
      final.length = length;
      final.offset = length;
      final.expiresAt = null;
      await this.#info.put(final, expected);
    } finally {
      await lock.release();
    }
    if (this.#options.removeParts && final.parts) {
      for (const partId of new Set(final.parts)) await this.#removeQuietly(partId);
    }
    this.#notify('post-finish', final, describeRequest);
  }

  async #removeQuietly(id: string): Promise<void> {
    const record = await this.#info.get(id);
    if (!record) return;
    await this.#info.remove(id);
    await this.#data.remove(record.path);
  }

  /**
   * pre-finish: the last byte is stored, the client is not answered yet. A refusal keeps the bytes, marks the
   * upload failed with the reason (HEAD shows it) and is rethrown: the client gets the hook's answer and
   * post-finish does not fire. Resolves to the headers (and body) answering hooks add to the normal answer.
   */
  async #checkFinish(
    record: UploadRecord,
    describeRequest: DescribeRequest,
  ): Promise<HookResponse | undefined> {
    if (!this.#options.observer.listens('pre-finish')) return undefined;
    try {
      return (await this.#check('pre-finish', record, describeRequest))?.response;
    } catch (error) {
      if (!(error instanceof WharfError)) throw error;
      const expected = record.version;
      record.failure = (error.body ?? error.message).trim() || error.message;
      await this.#info.put(record, expected);
      throw error;
    }
  }

  async #finish(record: UploadRecord, describeRequest: DescribeRequest): Promise<void> {
    this.#options.activity?.finished(record);
    this.#notify('post-finish', record, describeRequest);
    for (const finalId of record.pendingFinals) {
      await this.#tryBuildFinal(finalId, describeRequest).catch((error: unknown) => {
        this.#options.logger.error({ err: error, finalId }, 'building a concatenated upload failed');
      });
    }
  }

  /**
   * `error` marks the post event of an operation that failed: only hooks that run on failure receive it
   * (Borgitory's run-on-failure hooks).
   */
  #notify(
    event: 'post-create' | 'post-receive' | 'post-finish' | 'post-terminate',
    record: UploadRecord,
    describeRequest: DescribeRequest,
    error?: string,
  ): void {
    if (this.#options.observer.listens(event)) {
      this.#options.observer.notify(event, record, describeRequest, error);
    }
  }

  /** A blocking event; when a hook refuses, the matching post event fires for run-on-failure hooks. */
  async #check(
    event: 'pre-create' | 'pre-finish' | 'pre-terminate',
    record: UploadRecord,
    describeRequest: DescribeRequest,
  ): Promise<CheckAnswer | undefined> {
    try {
      return await this.#options.observer.check(event, record, describeRequest);
    } catch (error) {
      if (error instanceof WharfError) {
        const post =
          event === 'pre-create' ? 'post-create' : event === 'pre-finish' ? 'post-finish' : 'post-terminate';
        const reason = (error.body ?? '').trim() || error.message;
        this.#notify(post, record, describeRequest, `rejected by a ${event} hook: ${reason}`);
      }
      throw error;
    }
  }

  /**
   * Streams one body into the upload and records the new offset. A checksum mismatch or an overflow
   * discards the chunk (offset unchanged); an interruption keeps what arrived.
   */
  async #receive(
    record: UploadRecord,
    openBody: BodyOpener,
    checksum: WriteRequest['checksum'],
    contentLength: number | undefined,
  ): Promise<{ interruption?: WharfError }> {
    const remaining = record.length === null ? Number.POSITIVE_INFINITY : record.length - record.offset;
    const maxForFile =
      this.#options.maxFileSize > 0 ? this.#options.maxFileSize - record.offset : Number.POSITIVE_INFINITY;
    const maxBody = this.#options.maxBodySize > 0 ? this.#options.maxBodySize : Number.POSITIVE_INFINITY;
    if (contentLength !== undefined) {
      if (contentLength > remaining) throw new WharfError('ERR_UPLOAD_SIZE_EXCEEDED');
      if (contentLength > maxForFile) throw new WharfError('ERR_MAX_SIZE_EXCEEDED');
      if (contentLength > maxBody) {
        throw new WharfError('ERR_BODY_TOO_LARGE', {
          message: `request body is larger than the maximum of ${maxBody} bytes`,
        });
      }
    }
    const limit = Math.min(remaining, maxForFile, maxBody);
    const body = openBody(limit);
    const startOffset = record.offset;
    const activity = this.#options.activity;
    if (activity !== undefined)
      this.#writing.set(record.id, { upload: record, meter: body, from: startOffset });
    let result: Awaited<ReturnType<DataStore['append']>>;
    try {
      result = await this.#data.append(record.path, startOffset, body as Readable);
    } finally {
      if (activity !== undefined) this.#writing.delete(record.id);
    }
    // The store is done with the body either way; releasing it frees its buffers and bookkeeping.
    if (!body.destroyed) body.destroy();
    let interruption = body.interruption;
    if (result.error !== undefined && !interruption) {
      // The store failed (disk, S3), not the client: answered as a 500, so it must be visible to operators.
      this.#options.logger.error({ err: result.error, id: record.id }, 'storing upload bytes failed');
      interruption = new WharfError('ERR_INTERNAL', { cause: result.error });
    }
    let written = result.bytesWritten;
    let discard = interruption?.status === 413;
    if (checksum !== undefined && !discard) {
      // A partial chunk cannot be verified, so it is discarded as well.
      if (interruption) discard = true;
      else if (!body.digest()?.equals(checksum.digest)) {
        discard = true;
        interruption = new WharfError('ERR_CHECKSUM_MISMATCH');
      }
    }
    if (discard) {
      // Stage-then-commit: the record has not moved, so cutting the bytes back restores the old state.
      await this.#data.truncate(record.path, startOffset);
      written = 0;
    }
    if (record.length !== null && startOffset + written === record.length) {
      // Sealed before the record says complete, so a failure leaves the client retrying the last chunk.
      await this.#seal(record.path, record.length);
    }
    if (written > 0) {
      const expected = record.version;
      record.offset = startOffset + written;
      record.expiresAt = isComplete(record) ? null : this.#expiry();
      try {
        await this.#info.put(record, expected);
      } catch (error) {
        if (error instanceof InfoConflictError) throw new WharfError('ERR_INFO_CONFLICT', { cause: error });
        throw error;
      }
    }
    activity?.received(record, body.bytesSeen);
    return interruption ? { interruption } : {};
  }

  /** Lets a store that needs it turn the stored bytes into the finished object (S3: complete the upload). */
  async #seal(location: string, length: number): Promise<void> {
    if (canFinish(this.#data)) await this.#data.finish(location, length);
  }

  async write(id: string, request: WriteRequest): Promise<WriteOutcome> {
    let meter: BodyMeter | undefined;
    const lock = await this.#lock(id, () => meter?.interrupt(new WharfError('ERR_UPLOAD_INTERRUPTED')));
    try {
      const record = await this.get(id);
      if (record.isFinal) throw new WharfError('ERR_MODIFY_FINAL');
      // A retried final PATCH must not look like a success once pre-finish refused the upload.
      if (typeof record.failure === 'string' && record.failure !== '')
        throw new WharfError('ERR_UPLOAD_FAILED');
      // A finished upload answers with its offset and fires nothing again.
      if (isComplete(record)) return { upload: record };
      if (request.offset !== record.offset) {
        throw new WharfError('ERR_MISMATCHED_OFFSET', {
          headers: { 'Upload-Offset': String(record.offset) },
        });
      }
      // A retried last chunk whose first attempt sealed the object but could not record it.
      if (
        this.#mayBeSealed(record) &&
        (request.contentLength === undefined ||
          request.offset + request.contentLength >= (record.length ?? 0))
      ) {
        const sealed = await this.#finishSealed(record, request.describeRequest);
        if (sealed.finished) {
          return {
            upload: record,
            ...(sealed.hookResponse !== undefined ? { hookResponse: sealed.hookResponse } : {}),
          };
        }
      }
      if (request.declaredLength !== undefined) {
        if (record.length === null) {
          if (request.declaredLength < record.offset)
            throw new WharfError('ERR_INVALID_UPLOAD_LENGTH', {
              message: 'Upload-Length is below the current offset',
            });
          this.#checkFileSize(request.declaredLength);
          const expected = record.version;
          record.length = request.declaredLength;
          await this.#info.put(record, expected);
        } else if (record.length !== request.declaredLength) {
          throw new WharfError('ERR_UPLOAD_LENGTH_ALREADY_SET');
        }
      }
      const before = record.offset;
      const { interruption } = await this.#receive(
        record,
        (limit) => {
          meter = request.openBody(limit);
          return meter;
        },
        request.checksum,
        request.contentLength,
      );
      if (interruption?.code === 'ERR_CHECKSUM_MISMATCH' || interruption?.code === 'ERR_INTERNAL') {
        const reason =
          interruption.code === 'ERR_INTERNAL'
            ? `storage error: ${String((interruption.cause as Error | undefined)?.message ?? interruption.message)}`
            : 'checksum mismatch: the chunk was discarded';
        this.#notify('post-receive', record, request.describeRequest, reason);
      }
      if (interruption && interruption.status === 460) throw interruption;
      if (interruption && interruption.status === 413) throw interruption;
      let hookResponse: HookResponse | undefined;
      if (isComplete(record)) {
        hookResponse = await this.#checkFinish(record, request.describeRequest);
        await this.#finish(record, request.describeRequest);
      } else if (record.offset > before) {
        this.#notify('post-receive', record, request.describeRequest);
      }
      return {
        upload: record,
        ...(interruption ? { interruption } : {}),
        ...(hookResponse !== undefined ? { hookResponse } : {}),
      };
    } finally {
      await lock.release();
    }
  }

  /** Removes an upload once pre-terminate hooks agree; resolves to the headers (and body) they add. */
  async terminate(id: string, describeRequest: DescribeRequest): Promise<HookResponse | undefined> {
    const lock = await this.#lock(id, () => undefined);
    let record: UploadRecord;
    let hookResponse: HookResponse | undefined;
    try {
      record = await this.get(id);
      if (this.#options.observer.listens('pre-terminate')) {
        hookResponse = (await this.#check('pre-terminate', record, describeRequest))?.response;
      }
      await this.#info.remove(id);
      await this.#data.remove(record.path);
    } finally {
      await lock.release();
    }
    this.#options.activity?.terminated(record);
    this.#notify('post-terminate', record, describeRequest);
    return hookResponse;
  }

  /** Removes uploads whose expiry passed; returns how many. Runs in the background, never on a request. */
  async sweepExpired(): Promise<number> {
    let removed = 0;
    const now = this.#now();
    // What the records name, so that data no record names can be told apart (#sweepUnrecorded).
    const recorded = { ids: new Set<string>(), paths: new Set<string>() };
    for await (const record of this.#info.list()) {
      if (this.#copies) {
        recorded.ids.add(record.id);
        recorded.paths.add(record.path);
      }
      if (!isExpired(record, now)) continue;
      const lock = await this.#lock(record.id, () => undefined).catch(() => undefined);
      if (!lock) continue;
      try {
        const current = await this.#info.get(record.id);
        if (current && isExpired(current, this.#now())) {
          await this.#info.remove(current.id);
          await this.#data.remove(current.path);
          removed++;
          this.#options.activity?.expired(current);
          this.#notify('post-terminate', current, expirySweep, 'expired: removed by the expiration sweep');
        }
      } finally {
        await lock.release();
      }
    }
    if (this.#copies) removed += await this.#sweepUnrecorded(this.#copies, recorded);
    return removed;
  }

  /**
   * After the record store lost records: a copy without its record gets the record back (the next sweep expires
   * it like any other), a copy whose bytes are gone is removed, and data that neither a record nor a copy names
   * (the store's own layout only) is removed once it has not changed for the expiration time.
   */
  async #sweepUnrecorded(
    data: RecordCopyingDataStore,
    recorded: { ids: Set<string>; paths: Set<string> },
  ): Promise<number> {
    for await (const id of data.recordCopies()) {
      if (recorded.ids.has(id) || !isValidUploadId(id)) continue;
      const record = await this.#info.get(id);
      if (record) {
        recorded.ids.add(id);
        recorded.paths.add(record.path);
      } else {
        await data.removeRecordCopy(id);
      }
    }
    let removed = 0;
    const cutoff = this.#now() - this.#options.expirationMs;
    for await (const { location, modifiedAt } of data.storedLocations()) {
      if (modifiedAt > cutoff || recorded.paths.has(location)) continue;
      const id = location.slice(location.lastIndexOf('/') + 1);
      if (!isValidUploadId(id) || recorded.ids.has(id)) continue;
      const lock = await this.#lock(id, () => undefined).catch(() => undefined);
      if (!lock) continue;
      try {
        // Looked up again under the lock: an upload created meanwhile, or a copy written since, keeps its data.
        if ((await this.#info.get(id)) !== undefined) continue;
        await data.remove(location);
        recorded.paths.add(location);
        removed++;
        this.#options.logger.warn({ id, location }, 'removed upload data that no record names (abandoned)');
      } finally {
        await lock.release();
      }
    }
    return removed;
  }

  /** Every upload of this data store, expired ones included (hook modules list them). */
  async *list(): AsyncIterable<UploadRecord> {
    for await (const record of this.#info.list()) {
      if (record.storage === this.#data.name) yield record;
    }
  }

  /** Removes an upload and its bytes under its lock, firing no hooks (hook modules, housekeeping). */
  async remove(id: string): Promise<boolean> {
    if (!isValidUploadId(id)) return false;
    const lock = await this.#lock(id, () => undefined);
    try {
      const record = await this.#info.get(id);
      if (!record || record.storage !== this.#data.name) return false;
      await this.#info.remove(id);
      await this.#data.remove(record.path);
      return true;
    } finally {
      await lock.release();
    }
  }

  /** Opens the stored bytes of a finished upload for download. */
  async download(id: string, range?: { start: number; end: number }): Promise<Readable> {
    const record = await this.get(id);
    return this.#data.read(record.path, range);
  }
}
