import type { Readable } from 'node:stream';
import { type Backend, BackendUnavailableError } from '../backends/backend.ts';
import { WharfError } from '../errors.ts';
import type { FailureStage } from '../hooks/events.ts';
import { failureErrorLine, failureHeardBy, maskSecrets } from '../hooks/failure.ts';
import { isGeneratedUploadId, isValidLocation, isValidUploadId, newUploadId } from '../info/ids.ts';
import type { InfoStore } from '../info/info-store.ts';
import { InfoConflictError } from '../info/info-store.ts';
import {
  isAwaitingApproval,
  isComplete,
  isExpired,
  plainMetadata,
  type UploadRecord,
} from '../info/upload-record.ts';
import type { Lock, Locker } from '../locks/locker.ts';
import { LockTimeoutError } from '../locks/locker.ts';
import { OldestFirst } from '../oldest-first.ts';
import {
  canConcatenate,
  canFinish,
  type DataStore,
  keepsRecordCopies,
  type RecordCopyingDataStore,
} from '../storage/data-store.ts';
import type { UploadActivity, WriteInProgress } from './activity.ts';
import type { BodyMeter } from './body-meter.ts';
import type {
  BlockingLifecycleEvent,
  CheckAnswer,
  DescribeRequest,
  StopResponse,
  UploadLifecycleEvent,
  UploadObserver,
} from './events.ts';

type PostLifecycleEvent = Exclude<UploadLifecycleEvent, BlockingLifecycleEvent>;

import { RecordCopyingInfoStore } from './record-copies.ts';

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
   * Whether the info store's compare-and-set holds among all its writers without the upload's lock (true, the
   * default, for Redis, PostgreSQL and a file store one process owns). False for files shared by --workers
   * processes, which only the lock keeps apart: a final is then noted in its partials under their locks.
   */
  readonly atomicRecordWrites?: boolean;
  /**
   * Keep a copy of each record beside its bytes (when the data store can) and rebuild lost records from it:
   * for info stores that can come back empty (Redis, PostgreSQL). The value names the record store (see
   * RecordCopyOptions.owner); absent, no copies are kept.
   */
  readonly recordCopyOwner?: string;
  /**
   * Milliseconds between post-receive events while a PATCH body arrives (tusd's -progress-hooks-interval);
   * 0 (the default) sends one post-receive per PATCH, once its bytes are stored.
   */
  readonly progressIntervalMs?: number;
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
  /**
   * Called once the upload exists (record stored) and before its body is read: the IETF draft announces the
   * upload's URL to the client at that moment (104 Upload Resumption Supported).
   */
  readonly onCreated?: (upload: UploadRecord) => void;
  /** The body is the rest of the upload (IETF `Upload-Complete: ?1`): a length still unknown is set at its end. */
  readonly completesAtEnd?: boolean;
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

/** Sum of the lengths known so far (a deferred part counts 0). */
function knownLength(parts: readonly UploadRecord[]): number {
  return parts.reduce((sum, part) => sum + (part.length ?? 0), 0);
}

function hasFailed(record: UploadRecord): boolean {
  return typeof record.failure === 'string' && record.failure !== '';
}

/** A partial whose bytes a final may copy: complete and approved by pre-finish hooks (if any). */
function isUsable(part: UploadRecord): boolean {
  return isComplete(part) && !isAwaitingApproval(part);
}

/** The "request" of a HEAD whose caller did not describe it. */
const headRequest: DescribeRequest = () => ({ uri: '', method: 'HEAD', remoteAddr: null, headers: {} });

/** The "request" of an event no client caused (the expiration sweep). */
/** What run-on-failure hooks are told of a final that can never be built (HEAD answers 410 from then on). */
const concatFailed = { code: 'ERR_CONCAT_FAILED', status: 410 } as const;
/** What run-on-failure hooks are told of an unfinished upload the sweep removed. */
const expiredFailure = { code: 'ERR_UPLOAD_EXPIRED', status: 410 } as const;

const expirySweep: DescribeRequest = () => ({ uri: '', method: 'SWEEP', remoteAddr: null, headers: {} });
/** The "request" of a termination a post-receive hook asked for when no PATCH was arriving. */
const stoppedByHook: DescribeRequest = () => ({ uri: '', method: 'STOP', remoteAddr: null, headers: {} });
/** The "request" of a removal by a hook module or housekeeping. */
const housekeeping: DescribeRequest = () => ({ uri: '', method: 'REMOVE', remoteAddr: null, headers: {} });

/** Upload-Metadata for metadata a hook rewrote: `key base64value` pairs, a key alone for an empty value. */
function encodeMetadata(metadata: Readonly<Record<string, string>>): string {
  return Object.entries(metadata)
    .map(([key, value]) => (value === '' ? key : `${key} ${Buffer.from(value, 'utf8').toString('base64')}`))
    .join(',');
}

/**
 * A full disk or an exhausted quota (in the error or what caused it): answered 507, the client may resume
 * once space is freed. It is not a fault of the server's code, so it is not a 500.
 */
function isStorageFull(error: unknown): boolean {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 5; depth++) {
    const { code } = cause as NodeJS.ErrnoException;
    if (code === 'ENOSPC' || code === 'EDQUOT') return true;
    cause = cause.cause;
  }
  return false;
}

/**
 * What a request holding an upload's lock does when another asks for it: the body it reads gives way (keeping what
 * arrived). A request that comes before the body is opened (the holder still reads the record, or waits on its
 * store) is kept, and the body gives way as soon as it opens: lost, it left the asker waiting for the whole body,
 * or for its lock timeout.
 */
function bodyGivingWay(): {
  readonly onReleaseRequest: () => void;
  readonly opened: (meter: BodyMeter) => BodyMeter;
} {
  let body: BodyMeter | undefined;
  let asked = false;
  return {
    onReleaseRequest: () => {
      asked = true;
      body?.giveWay(new WharfError('ERR_UPLOAD_INTERRUPTED'));
    },
    opened: (meter) => {
      body = meter;
      if (asked) meter.giveWay(new WharfError('ERR_UPLOAD_INTERRUPTED'));
      return meter;
    },
  };
}

/** Opens the request body through a meter with the given limit (and sends 100 Continue if expected). */
export type BodyOpener = (limit: number) => BodyMeter;

export interface WriteRequest {
  readonly offset: number;
  /** Upload-Length sent on a PATCH (deferred length). */
  readonly declaredLength: number | undefined;
  /** Content-Length of the body, when the client declared one. */
  readonly contentLength: number | undefined;
  /** Whether the request announces a body (a non-zero Content-Length, or Transfer-Encoding). */
  readonly announcesBody?: boolean;
  readonly checksum: { readonly algorithm: string; readonly digest: Buffer } | undefined;
  readonly openBody: BodyOpener;
  readonly describeRequest: DescribeRequest;
  /** The body is the rest of the upload (IETF `Upload-Complete: ?1`): a length still unknown is set at its end. */
  readonly completesAtEnd?: boolean;
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
  /** The info store with its copies, when they are kept. */
  readonly #copyingInfo: RecordCopyingInfoStore | undefined;
  /** Bodies being written now (only tracked when someone listens to the activity). */
  readonly #writing = new Map<string, { upload: UploadRecord; meter: BodyMeter; from: number }>();
  /** The last failure run-on-failure hooks heard of, by upload id: a retry into the same one is not new. */
  readonly #lastFailure = new Map<string, string>();
  /** Forgets the upload whose failure is oldest (one kept iterator: see OldestFirst). */
  readonly #lastFailureOldest = new OldestFirst(this.#lastFailure);
  /** The PATCH bodies arriving now, by upload id: what a hook's StopUpload interrupts. */
  readonly #patchBodies = new Map<string, BodyMeter>();

  constructor(options: UploadServiceOptions) {
    this.#options = options;
    this.#data = options.dataStore;
    this.#now = options.now ?? Date.now;
    const owner = options.recordCopyOwner;
    this.#copies = owner !== undefined && keepsRecordCopies(this.#data) ? this.#data : undefined;
    this.#copyingInfo =
      this.#copies && owner !== undefined
        ? new RecordCopyingInfoStore(options.infoStore, this.#copies, {
            owner,
            expirationMs: options.expirationMs,
            now: this.#now,
            logger: options.logger,
          })
        : undefined;
    this.#info = this.#copyingInfo ?? options.infoStore;
    options.observer.onStopUpload?.((id, response) => {
      this.stop(id, response).catch((error: unknown) => {
        options.logger.error({ err: error, id }, 'stopping an upload for a hook failed');
      });
    });
  }

  /**
   * A post-receive hook answered StopUpload (tusd 2). A PATCH of the upload arriving on this instance is
   * interrupted and answered 400 ERR_UPLOAD_STOPPED (the hook's HTTPResponse merged over it), and the upload
   * is terminated, as tusd does. With no PATCH arriving here, the upload is terminated at once (taking its
   * lock interrupts a PATCH on another instance), so the client's next request gets 404. tusd ignores a stop
   * that comes after the request; without --hooks-progress-interval Wharf's post-receive always does.
   */
  async stop(id: string, response: StopResponse | undefined): Promise<void> {
    const error = new WharfError('ERR_UPLOAD_STOPPED', {
      ...(response?.status !== undefined ? { status: response.status } : {}),
      ...(response?.body !== undefined ? { body: response.body } : {}),
      headers: { ...response?.headers },
    });
    if (!isValidUploadId(id)) return;
    const body = this.#patchBodies.get(id);
    if (body !== undefined) {
      body.interrupt(error);
      // Too late for this body (fully read, or interrupted for another reason): terminate once the PATCH is done.
      if (body.interruption === error) return;
    }
    let record: UploadRecord;
    const lock = await this.#lock(id, () => undefined);
    try {
      try {
        record = await this.get(id);
      } catch (cause) {
        // Gone already (terminated, expired) or another endpoint's upload: nothing to stop.
        if (cause instanceof WharfError && cause.status < 500) return;
        throw cause;
      }
      await this.#info.remove(id);
      await this.#data.remove(record.path);
    } finally {
      await lock.release();
    }
    this.#options.activity?.terminated(record);
    this.#notify('post-terminate', record, stoppedByHook);
    await this.#reviewFinals(record.pendingFinals, stoppedByHook);
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
    // Stores parse JSON into ordinary objects; the record's metadata has no prototype (plainMetadata).
    return { ...record, metadata: plainMetadata(record.metadata) };
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
    // A complete upload's offset cannot move: while pre-finish hooks decide (holding the lock for as long as a
    // scan takes) its state is read without waiting for them.
    const current = await this.get(id);
    if (isAwaitingApproval(current)) return current;
    const lock = await this.#lock(id, () => undefined);
    try {
      const record = await this.get(id);
      // A final waiting for its parts: one that can never be built is marked failed now, not left waiting.
      if (record.isFinal && record.parts && !isComplete(record) && !hasFailed(record)) {
        const { failure } = await this.#reviewParts(record);
        if (failure !== undefined) await this.#markFinalFailed(record, failure);
      } else if (this.#mayBeSealed(record)) {
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

  /**
   * The record for a download: like {@link get}, but an upload whose object was sealed is finished first. Only
   * then is the lock taken: taking it makes a PATCH in progress give way, and a GET (a client polling until the
   * upload is ready) must never cut an upload short.
   */
  async getForDownload(id: string, describeRequest: DescribeRequest): Promise<UploadRecord> {
    const record = await this.get(id);
    return this.#mayBeSealed(record) && (await this.#looksSealed(record))
      ? this.settle(id, describeRequest)
      : record;
  }

  /**
   * Whether the store holds the sealed object of the record's length. Only a look: a store that cannot answer
   * now (S3 down) counts as not sealed, the record stays as it is, and HEAD and GET still answer.
   */
  async #looksSealed(record: UploadRecord): Promise<boolean> {
    if (!canFinish(this.#data) || record.length === null) return false;
    return this.#data.isFinished(record.path, record.length).catch((error: unknown) => {
      this.#options.logger.warn(
        { err: error, id: record.id },
        'could not check whether the upload was sealed',
      );
      return false;
    });
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
    if (!canFinish(this.#data) || length === null || !(await this.#looksSealed(record))) {
      return { finished: false };
    }
    this.#options.logger.warn(
      { id: record.id, offset: record.offset, length },
      'finishing an upload whose object was sealed but not recorded (a finishing request was cut)',
    );
    // Removes what the cut finish may have left (tails, the local copy).
    await this.#seal(record.path, length);
    const base = { offset: record.offset, length };
    record.offset = length;
    record.expiresAt = null;
    await this.#putHeld(record, base);
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
      // The lengths known now already bound the final: refused before anything is stored or copied.
      const known = knownLength(parts);
      this.#checkFileSize(known);
      length = parts.every((part) => part.length !== null) ? known : null;
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
      metadata: plainMetadata(request.metadata),
      isPartial: concat?.kind === 'partial',
      isFinal: concat?.kind === 'final',
      parts: concat?.kind === 'final' ? concat.partIds : null,
      concatHeader: concat?.header ?? null,
      pendingFinals: [],
      expiresAt: null,
      storage: this.#data.name,
      // Bytes are quarantined from the start: a crash while a pre-finish hook decides leaves them undownloadable.
      ...(concat?.kind !== 'final' && this.#options.observer.listens('pre-finish')
        ? { awaitingApproval: true }
        : {}),
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

    // A body is written under the upload's lock, as a PATCH's is: from the moment the upload exists its URL may be
    // known (the IETF draft announces it then, 104), and a HEAD, an append or a DELETE must make the body give way
    // (keeping what arrived), not run beside it. A final has no body; building it takes its lock.
    const giving = bodyGivingWay();
    const lock =
      request.body !== undefined && concat?.kind !== 'final' && length !== 0
        ? await this.#lock(draft.id, giving.onReleaseRequest)
        : undefined;
    try {
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
        if (isStorageFull(error))
          throw this.#creationFailed(draft, request.describeRequest, error, 'ERR_STORAGE_FULL');
        throw this.#creationFailed(draft, request.describeRequest, error);
      }
      if (length === 0 && concat?.kind !== 'final') await this.#seal(location, 0);
      const record: UploadRecord = {
        ...draft,
        path: location,
        // A final waiting for its partials lives as long as they do: they expire on their own (and the final is
        // then marked failed, see #markFinalFailed), while their writes, which keep them alive, never touch it.
        expiresAt: length === 0 || concat?.kind === 'final' ? null : this.#expiry(),
      };
      try {
        await this.#info.put(record, null);
      } catch (error) {
        await this.#data.remove(location);
        if (error instanceof InfoConflictError) throw new WharfError('ERR_UPLOAD_ID_TAKEN', { cause: error });
        // The record store refused it (a full disk): no record and no data file are left behind.
        if (isStorageFull(error))
          throw this.#creationFailed(record, request.describeRequest, error, 'ERR_STORAGE_FULL');
        throw this.#creationFailed(record, request.describeRequest, error);
      }
      this.#options.activity?.created(record);
      request.onCreated?.(record);

      if (concat?.kind === 'final') {
        if (hookResponse !== undefined) request.onHookResponse?.(hookResponse);
        await this.#startFinal(record, parts, request.describeRequest);
        return record;
      }

      if (request.body && (length === null || length > 0)) {
        // A creation refused for lack of space before any byte was stored leaves no empty upload behind.
        const refusedForSpace = (error: WharfError | undefined): boolean =>
          error?.code === 'ERR_STORAGE_FULL' && record.offset === 0;
        const openBody = request.body;
        const { interruption } = await this.#receive(
          record,
          (limit) => giving.opened(openBody(limit)),
          request.checksum,
          undefined,
          request.completesAtEnd === true,
        ).catch(async (error: unknown) => {
          if (error instanceof WharfError && refusedForSpace(error)) await this.#removeQuietly(record.id);
          throw this.#creationFailed(record, request.describeRequest, error);
        });
        // A refused creation body leaves no upload behind; any other interruption keeps what arrived.
        if (
          interruption &&
          (interruption.status === 413 || interruption.status === 460 || refusedForSpace(interruption))
        ) {
          await this.#removeQuietly(record.id);
          if (refusedForSpace(interruption))
            this.#creationFailed(record, request.describeRequest, interruption);
          throw interruption;
        }
        if (interruption?.code === 'ERR_STORAGE_FULL' || interruption?.code === 'ERR_INTERNAL') {
          // The upload exists with the bytes that fit: its storage failed, as a PATCH's would.
          const reason = String((interruption.cause as Error | undefined)?.message ?? interruption.message);
          if (this.#firstFailure(record.id, `${interruption.code}:${record.offset}`))
            this.#failed('storage', record, request.describeRequest, interruption, reason);
        }
      }
      if (isComplete(record)) {
        hookResponse = mergedResponse(hookResponse, await this.#checkFinish(record, request.describeRequest));
        await this.#finish(record, request.describeRequest);
      } else {
        this.#notify('post-create', record, request.describeRequest);
      }
      if (hookResponse !== undefined) request.onHookResponse?.(hookResponse);
      await this.#recorded(record.id);
      return record;
    } finally {
      await lock?.release();
    }
  }

  /** Post events of the upload hold their place in its order before the next request may cause more. */
  async #recorded(id: string): Promise<void> {
    await this.#options.observer.recorded?.(id).catch(() => undefined);
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
      const metadata = plainMetadata(change.metadata);
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
      if (hasFailed(part)) {
        throw new WharfError('ERR_UPLOAD_FAILED', {
          message: `partial upload ${partId} was refused by a pre-finish hook`,
        });
      }
      if (!isUsable(part) && !this.#options.allowUnfinishedConcatenation) {
        throw new WharfError('ERR_UPLOAD_NOT_FINISHED', {
          message: isComplete(part)
            ? `partial upload ${partId} awaits the approval of a pre-finish hook`
            : `partial upload ${partId} is not finished`,
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
    const unfinished = [...new Set(parts.filter((part) => !isUsable(part)).map((part) => part.id))];
    for (const partId of unfinished) await this.#awaitPart(partId, final.id);
    await this.#tryBuildFinal(final.id, describeRequest);
  }

  /**
   * Makes an unfinished partial remember a final that waits for it. Without the partial's lock, which would make
   * the PATCH writing it give way (a final is created while its partials upload: that is what
   * concatenation-unfinished is for): compare-and-set, tried again when the partial's writer wrote meanwhile.
   * The writer takes the final in when its own write meets this one (see #putHeld). Record files shared by
   * --workers processes (atomicRecordWrites false) only have the lock to keep writers apart: taken there.
   */
  async #awaitPart(partId: string, finalId: string): Promise<void> {
    if (this.#options.atomicRecordWrites === false) {
      // Record files shared by processes: a write without the lock could undo the writer's (cuts its PATCH).
      const lock = await this.#lock(partId, () => undefined);
      try {
        const part = await this.#stillThere(partId);
        if (part === undefined || isUsable(part) || part.pendingFinals.includes(finalId)) return;
        const expected = part.version;
        part.pendingFinals = [...part.pendingFinals, finalId];
        await this.#info.put(part, expected);
      } finally {
        await lock.release();
      }
      return;
    }
    for (let attempt = 1; ; attempt++) {
      const part = await this.#stillThere(partId);
      if (part === undefined || isUsable(part) || part.pendingFinals.includes(finalId)) return;
      const expected = part.version;
      part.pendingFinals = [...part.pendingFinals, finalId];
      try {
        await this.#info.put(part, expected);
        return;
      } catch (error) {
        if (!(error instanceof InfoConflictError)) throw error;
        if (attempt === 10) throw new WharfError('ERR_INFO_CONFLICT', { cause: error });
      }
    }
  }

  /**
   * The record, or undefined when the upload is gone (removed, expired) since it was read: a final waiting for it
   * is then marked failed by the build that follows, rather than left behind by a failed POST (it has no expiry).
   */
  async #stillThere(id: string): Promise<UploadRecord | undefined> {
    try {
      return await this.get(id);
    } catch (error) {
      if (error instanceof WharfError && (error.status === 404 || error.status === 410)) return undefined;
      throw error;
    }
  }

  /**
   * Writes the record of an upload whose lock this request holds. A partial may meanwhile have been told of a
   * final that waits for it (#awaitPart writes without the lock): that list is taken in and the record written
   * again. Any other change, an offset or length other than `base` (what this request last read or wrote), is
   * a real conflict and throws.
   */
  async #putHeld(
    record: UploadRecord,
    base: { readonly offset: number; readonly length: number | null },
  ): Promise<void> {
    try {
      await this.#info.put(record, record.version);
    } catch (error) {
      if (!(error instanceof InfoConflictError) || !record.isPartial) throw error;
      const stored = await this.#info.get(record.id);
      if (stored === undefined || stored.offset !== base.offset || stored.length !== base.length) throw error;
      record.pendingFinals = [...new Set([...record.pendingFinals, ...stored.pendingFinals])];
      await this.#info.put(record, stored.version);
    }
  }

  /**
   * Builds the final upload if every part is complete; safe to call any number of times. A final whose part
   * is gone or whose parts exceed --max-file-size is marked failed instead (before any byte is copied).
   */
  async #tryBuildFinal(finalId: string, describeRequest: DescribeRequest): Promise<void> {
    const lock = await this.#lock(finalId, () => undefined);
    let final: UploadRecord;
    let failure: string | undefined;
    try {
      final = await this.get(finalId);
      if (isComplete(final) || !final.parts || hasFailed(final)) return;
      const review = await this.#reviewParts(final);
      failure = review.failure;
      if (failure !== undefined) {
        await this.#markFinalFailed(final, failure);
      } else {
        const parts = review.parts;
        if (!parts.every(isUsable)) return;
        const length = knownLength(parts);
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
      }
    } finally {
      await lock.release();
    }
    if (failure !== undefined) {
      this.#failed('concatenation', final, describeRequest, concatFailed, failure);
      return;
    }
    if (this.#options.removeParts && final.parts) {
      for (const partId of new Set(final.parts)) await this.#removeQuietly(partId);
    }
    this.#notify('post-finish', final, describeRequest);
  }

  /**
   * The parts of an unbuilt final as stored now, or why the final can never be built: a part is gone
   * (removed, expired) or the lengths known so far add up to more than --max-file-size.
   */
  async #reviewParts(
    final: UploadRecord,
  ): Promise<{ readonly parts: readonly UploadRecord[]; readonly failure?: string }> {
    const parts: UploadRecord[] = [];
    for (const partId of final.parts ?? []) {
      try {
        parts.push(await this.get(partId));
      } catch (error) {
        if (error instanceof WharfError && (error.status === 404 || error.status === 410)) {
          const how = error.status === 410 ? 'expired' : 'no longer exists';
          return { parts, failure: `partial upload ${partId} ${how}` };
        }
        throw error;
      }
    }
    const refused = parts.find(hasFailed);
    if (refused !== undefined)
      return { parts, failure: `partial upload ${refused.id} was refused by a pre-finish hook` };
    const known = knownLength(parts);
    const max = this.#options.maxFileSize;
    if (max > 0 && known > max) {
      const some = parts.every((part) => part.length !== null) ? '' : ' at least';
      return {
        parts,
        failure: `the partial uploads add up to${some} ${known} bytes, more than the maximum of ${max}`,
      };
    }
    return { parts };
  }

  /**
   * Records why a final cannot be built; HEAD and GET then answer 410 with the reason, the admin API shows it.
   * From then on it expires like an abandoned upload, and the sweep removes it.
   */
  async #markFinalFailed(final: UploadRecord, failure: string): Promise<void> {
    const expected = final.version;
    final.failure = failure;
    final.expiresAt = this.#expiry();
    await this.#info.put(final, expected);
    this.#options.logger.warn({ id: final.id, failure }, 'a concatenated upload failed');
  }

  /** Re-checks the finals waiting for a partial whose length became known or that was removed. */
  async #reviewFinals(finalIds: readonly string[], describeRequest: DescribeRequest): Promise<void> {
    for (const finalId of finalIds) {
      await this.#reviewFinal(finalId, describeRequest).catch((error: unknown) => {
        // A final removed or expired meanwhile needs nothing more.
        if (error instanceof WharfError && (error.status === 404 || error.status === 410)) return;
        this.#options.logger.error({ err: error, finalId }, 'checking a concatenated upload failed');
      });
    }
  }

  async #reviewFinal(finalId: string, describeRequest: DescribeRequest): Promise<void> {
    const lock = await this.#lock(finalId, () => undefined);
    let final: UploadRecord;
    let failure: string | undefined;
    try {
      final = await this.get(finalId);
      if (isComplete(final) || !final.parts || hasFailed(final)) return;
      failure = (await this.#reviewParts(final)).failure;
      if (failure !== undefined) await this.#markFinalFailed(final, failure);
    } finally {
      await lock.release();
    }
    if (failure !== undefined) this.#failed('concatenation', final, describeRequest, concatFailed, failure);
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
    if (!this.#options.observer.listens('pre-finish')) {
      await this.#release(record);
      return undefined;
    }
    let response: HookResponse | undefined;
    try {
      response = (await this.#check('pre-finish', record, describeRequest))?.response;
    } catch (error) {
      if (!(error instanceof WharfError)) throw error;
      record.failure = (error.body ?? error.message).trim() || error.message;
      record.awaitingApproval = false;
      await this.#putHeld(record, record);
      // Finals waiting for this partial can never be built from refused bytes.
      await this.#reviewFinals(record.pendingFinals, describeRequest);
      throw error;
    }
    await this.#release(record);
    return response;
  }

  /** Lets a finished upload out of quarantine once pre-finish hooks approved it (or none are configured). */
  async #release(record: UploadRecord): Promise<void> {
    if (record.awaitingApproval !== true) return;
    record.awaitingApproval = false;
    await this.#putHeld(record, record);
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

  /**
   * An operation failed at `stage`: the run-on-failure hooks of every post event whose operation it ends hear it
   * once (failureHeardBy in hooks/failure.ts), with the stage, code, status and reason (secrets masked).
   */
  #failed(
    stage: FailureStage,
    record: UploadRecord,
    describeRequest: DescribeRequest,
    error: { readonly code: string; readonly status: number },
    reason: string,
  ): void {
    const observer = this.#options.observer;
    const paired = failureHeardBy[stage][0] as PostLifecycleEvent;
    const failure = { stage, code: error.code, status: error.status, reason: maskSecrets(reason) };
    if (observer.failed !== undefined) observer.failed(paired, record, describeRequest, failure);
    else this.#notify(paired, record, describeRequest, failureErrorLine(failure));
  }

  /**
   * A creation the server could not carry out (a store failed or is full; never a client's mistake): its
   * run-on-failure hooks hear it. Returns the error to throw (a store's own error becomes the coded one).
   */
  #creationFailed(
    record: UploadRecord,
    describeRequest: DescribeRequest,
    error: unknown,
    code?: 'ERR_STORAGE_FULL',
  ): unknown {
    const coded = code !== undefined ? new WharfError(code, { cause: error }) : error;
    const reported = coded instanceof WharfError ? coded : new WharfError('ERR_INTERNAL', { cause: error });
    // A shared record store that is down answers 503 and the client retries: nothing failed for good.
    if (reported.status >= 500 && !(error instanceof BackendUnavailableError)) {
      const cause = reported.cause instanceof Error ? reported.cause.message : reported.message;
      this.#failed('creation', record, describeRequest, reported, cause);
    }
    return coded;
  }

  /**
   * Whether this failure of the upload is new: a client retrying into the same failure (the same stage, code
   * and offset) is told again, its hooks are not. Remembered per instance, for the last 1000 uploads.
   */
  #firstFailure(id: string, key: string): boolean {
    if (this.#lastFailure.get(id) === key) return false;
    this.#lastFailure.delete(id);
    this.#lastFailure.set(id, key);
    if (this.#lastFailure.size > 1000) this.#lastFailureOldest.evict();
    return true;
  }

  /** A blocking event; when a hook refuses, the run-on-failure hooks of its operation hear it. */
  async #check(
    event: 'pre-create' | 'pre-finish' | 'pre-terminate',
    record: UploadRecord,
    describeRequest: DescribeRequest,
  ): Promise<CheckAnswer | undefined> {
    try {
      return await this.#options.observer.check(event, record, describeRequest);
    } catch (error) {
      if (error instanceof WharfError) {
        const reason = (error.body ?? '').trim() || error.message;
        this.#failed(event, record, describeRequest, error, reason);
      }
      throw error;
    }
  }

  /**
   * Streams one body into the upload and records the new offset. A checksum mismatch or an overflow
   * discards the chunk (offset unchanged); an interruption keeps what arrived. `length` is the upload's length
   * with this request: a deferred length it declares is recorded with its bytes (unless they are discarded).
   */
  async #receive(
    record: UploadRecord,
    openBody: BodyOpener,
    checksum: WriteRequest['checksum'],
    contentLength: number | undefined,
    completesAtEnd = false,
    declared: number | null = record.length,
  ): Promise<{ interruption?: WharfError }> {
    const limit = this.#bodyLimit(record.offset, declared, contentLength);
    const body = openBody(limit);
    const startOffset = record.offset;
    const activity = this.#options.activity;
    if (activity !== undefined)
      this.#writing.set(record.id, { upload: record, meter: body, from: startOffset });
    const keepAlive = this.#keepAlive(record);
    let result: Awaited<ReturnType<DataStore['append']>>;
    try {
      result = await this.#data.append(record.path, startOffset, body as Readable);
    } finally {
      if (activity !== undefined) this.#writing.delete(record.id);
      await keepAlive?.stop();
    }
    // The store is done with the body either way; releasing it frees its buffers and bookkeeping.
    if (!body.destroyed) body.destroy();
    let interruption = body.interruption;
    if (result.error !== undefined && !interruption && isStorageFull(result.error)) {
      // The bytes that fit are kept and counted below; the client resumes from there once space is freed.
      this.#options.logger.error(
        { err: result.error, id: record.id, bytesWritten: result.bytesWritten },
        'storage is full: upload bytes past what fit were refused (507)',
      );
      interruption = new WharfError('ERR_STORAGE_FULL', { cause: result.error });
    } else if (result.error !== undefined && !interruption) {
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
    // A body that ended on its own completes an upload of unknown length there (IETF Upload-Complete: ?1).
    const endsHere = completesAtEnd && declared === null && !interruption && !discard;
    const length = endsHere ? startOffset + written : discard ? record.length : declared;
    if (length !== null && startOffset + written === length) {
      // Sealed before the record says complete, so a failure leaves the client retrying the last chunk.
      await this.#seal(record.path, length);
    }
    if (written > 0 || length !== record.length) {
      const before = { offset: record.offset, expiresAt: record.expiresAt, length: record.length };
      record.length = length;
      record.offset = startOffset + written;
      record.expiresAt = isComplete(record) ? null : this.#expiry();
      try {
        await this.#putHeld(record, before);
      } catch (error) {
        // Not recorded: the record keeps its offset, and the next append cuts the bytes stored past it.
        Object.assign(record, before);
        if (error instanceof InfoConflictError) throw new WharfError('ERR_INFO_CONFLICT', { cause: error });
        if (isStorageFull(error)) {
          throw new WharfError('ERR_STORAGE_FULL', {
            cause: error,
            headers: { 'Upload-Offset': String(startOffset) },
          });
        }
        throw error;
      }
    }
    activity?.received(record, body.bytesSeen);
    return interruption ? { interruption } : {};
  }

  /**
   * While a body arrives, moves the upload's expiry forward every half --upload-expiration: an upload receiving
   * bytes is not idle, though its record is written only once the body ends. Without it, a PATCH longer than the
   * expiration made the upload expired (HEAD 410) and the sweep took its lock, which cut the PATCH. Only the
   * expiry is written (the offset counts stored bytes only once the body ends); stop() waits for a write in flight,
   * so that the record's next write expects the version it left.
   */
  #keepAlive(record: UploadRecord): { stop(): Promise<void> } | undefined {
    // At most what a timer holds (2^31 - 1 ms, about 24 days): a longer delay makes Node fire it after 1 ms.
    const interval = Math.min(this.#options.expirationMs / 2, 2 ** 31 - 1);
    if (interval <= 0 || record.expiresAt === null) return undefined;
    let writing: Promise<void> | undefined;
    const timer = setInterval(() => {
      if (writing !== undefined) return;
      const before = record.expiresAt;
      record.expiresAt = this.#expiry();
      writing = this.#putHeld(record, record)
        .catch((error: unknown) => {
          // The next write (or this body's end) tries again; the sweep may meanwhile cut the body, as before.
          record.expiresAt = before;
          this.#options.logger.warn(
            { err: error, id: record.id },
            'could not extend the expiry of an upload',
          );
        })
        .finally(() => {
          writing = undefined;
        });
    }, interval);
    timer.unref();
    return {
      stop: async () => {
        clearInterval(timer);
        await writing;
      },
    };
  }

  /**
   * The most bytes a body at `offset` may bring to an upload of `length` (null: deferred). A body whose announced
   * `contentLength` is larger is refused (413) before anything is read or changed.
   */
  #bodyLimit(offset: number, length: number | null, contentLength: number | undefined): number {
    const remaining = length === null ? Number.POSITIVE_INFINITY : length - offset;
    const maxForFile =
      this.#options.maxFileSize > 0 ? this.#options.maxFileSize - offset : Number.POSITIVE_INFINITY;
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
    return Math.min(remaining, maxForFile, maxBody);
  }

  /** Lets a store that needs it turn the stored bytes into the finished object (S3: complete the upload). */
  async #seal(location: string, length: number): Promise<void> {
    if (canFinish(this.#data)) await this.#data.finish(location, length);
  }

  async write(id: string, request: WriteRequest): Promise<WriteOutcome> {
    let meter: BodyMeter | undefined;
    // Asked to give way, the body first reads the bytes already on their way (a client that reconnected at once).
    const giving = bodyGivingWay();
    const lock = await this.#lock(id, giving.onReleaseRequest);
    try {
      const record = await this.get(id);
      if (record.isFinal) throw new WharfError('ERR_MODIFY_FINAL');
      // A retried final PATCH must not look like a success once pre-finish refused the upload.
      if (typeof record.failure === 'string' && record.failure !== '')
        throw new WharfError('ERR_UPLOAD_FAILED');
      // A finished upload takes no more bytes. An empty PATCH at its length (a client confirming the end, or
      // sending Upload-Length on an empty last PATCH) answers 204 with the offset and fires nothing again;
      // any other offset or a body is a conflict, so a late or concurrent writer learns it lost.
      if (isComplete(record)) {
        this.#refuseWriteToComplete(record, request);
        // Still awaiting approval with the lock free: the instance that ran pre-finish died meanwhile. The
        // client's confirming PATCH runs the check again.
        if (isAwaitingApproval(record)) {
          const hookResponse = await this.#checkFinish(record, request.describeRequest);
          await this.#finish(record, request.describeRequest);
          return { upload: record, ...(hookResponse !== undefined ? { hookResponse } : {}) };
        }
        return { upload: record };
      }
      // Written with the next record update (the one that may complete the upload), never after it.
      if (this.#options.observer.listens('pre-finish')) record.awaitingApproval = true;
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
      let completingLength: number | undefined;
      if (request.declaredLength !== undefined) {
        if (record.length === null) {
          if (request.declaredLength < record.offset)
            throw new WharfError('ERR_INVALID_UPLOAD_LENGTH', {
              message: 'Upload-Length is below the current offset',
            });
          // An upload deferred at creation and declared empty now is an empty upload too (--allow-empty=false).
          if (request.declaredLength === 0 && !this.#options.allowEmpty)
            throw new WharfError('ERR_EMPTY_UPLOAD_REFUSED');
          this.#checkFileSize(request.declaredLength);
          // A body the request itself refuses (413) leaves the length deferred: a refused request changes nothing.
          this.#bodyLimit(record.offset, request.declaredLength, request.contentLength);
          if (request.declaredLength === record.offset) {
            // The length completes the upload: recorded with the (empty) body, once the store has sealed it, as the
            // last bytes are. Recorded first, a failed seal (S3 down) left a complete record whose object never
            // came to exist: GET 500 for good, every retry 204.
            completingLength = request.declaredLength;
          } else {
            record.length = request.declaredLength;
            await this.#putHeld(record, { offset: record.offset, length: null });
            // A final waiting for this partial may now be known to exceed --max-file-size.
            await this.#reviewFinals(record.pendingFinals, request.describeRequest);
          }
        } else if (record.length !== request.declaredLength) {
          throw new WharfError('ERR_UPLOAD_LENGTH_ALREADY_SET');
        }
      }
      const before = record.offset;
      let reported = before;
      const progress = this.#progressReporter(
        record,
        () => meter,
        request.describeRequest,
        (offset) => {
          reported = offset;
        },
      );
      let received: { interruption?: WharfError };
      try {
        received = await this.#receiveForWrite(record, request, completingLength, (opened) => {
          meter = giving.opened(opened);
        });
      } finally {
        if (progress !== undefined) clearInterval(progress);
        this.#patchBodies.delete(id);
      }
      const { interruption } = received;
      if (interruption?.code === 'ERR_UPLOAD_STOPPED') {
        // tusd terminates an upload its hook stopped; the client's next request gets 404.
        await this.#info.remove(record.id);
        await this.#data.remove(record.path);
        this.#options.activity?.terminated(record);
        this.#notify('post-terminate', record, request.describeRequest);
        throw interruption;
      }
      if (
        interruption?.code === 'ERR_CHECKSUM_MISMATCH' ||
        interruption?.code === 'ERR_INTERNAL' ||
        interruption?.code === 'ERR_STORAGE_FULL'
      ) {
        const checksum = interruption.code === 'ERR_CHECKSUM_MISMATCH';
        const reason = checksum
          ? 'the chunk was discarded'
          : String((interruption.cause as Error | undefined)?.message ?? interruption.message);
        const stage = checksum ? 'checksum' : 'storage';
        // A client retrying into the same storage failure (same code and offset) is not a new failure.
        if (checksum || this.#firstFailure(record.id, `${interruption.code}:${record.offset}`))
          this.#failed(stage, record, request.describeRequest, interruption, reason);
      }
      if (interruption && interruption.status === 460) throw interruption;
      if (interruption && interruption.status === 413) throw interruption;
      let hookResponse: HookResponse | undefined;
      if (isComplete(record)) {
        // With progress events (tusd's model), the PATCH that completes the upload reports its end too.
        if (progress !== undefined && record.offset > before && record.offset !== reported)
          this.#notify('post-receive', record, request.describeRequest);
        hookResponse = await this.#checkFinish(record, request.describeRequest);
        await this.#finish(record, request.describeRequest);
      } else if (record.offset > before && record.offset !== reported) {
        this.#notify('post-receive', record, request.describeRequest);
      }
      return {
        upload: record,
        ...(interruption ? { interruption } : {}),
        ...(hookResponse !== undefined ? { hookResponse } : {}),
      };
    } finally {
      await this.#recorded(id);
      await lock.release();
    }
  }

  /** Receives a PATCH body, keeping it where {@link UploadService.stop} can interrupt it. */
  #receiveForWrite(
    record: UploadRecord,
    request: WriteRequest,
    completingLength: number | undefined,
    opened: (meter: BodyMeter) => void,
  ): Promise<{ interruption?: WharfError }> {
    return this.#receive(
      record,
      (limit) => {
        const meter = request.openBody(limit);
        opened(meter);
        this.#patchBodies.set(record.id, meter);
        return meter;
      },
      request.checksum,
      request.contentLength,
      request.completesAtEnd === true,
      completingLength ?? record.length,
    );
  }

  /**
   * With --hooks-progress-interval, a post-receive event every interval while the body arrives, when the
   * offset moved (tusd's progress hooks; the offset counts bytes read, which may exceed bytes stored).
   */
  #progressReporter(
    record: UploadRecord,
    meter: () => BodyMeter | undefined,
    describeRequest: DescribeRequest,
    onReport: (offset: number) => void,
  ): NodeJS.Timeout | undefined {
    const interval = this.#options.progressIntervalMs ?? 0;
    if (interval <= 0 || !this.#options.observer.listens('post-receive')) return undefined;
    const from = record.offset;
    let last = from;
    return setInterval(() => {
      const offset = from + (meter()?.bytesSeen ?? 0);
      if (offset === last) return;
      last = offset;
      onReport(offset);
      this.#notify('post-receive', { ...record, offset }, describeRequest);
    }, interval);
  }

  #refuseWriteToComplete(record: UploadRecord, request: WriteRequest): void {
    const headers = { 'Upload-Offset': String(record.offset) };
    if (request.offset !== record.offset) throw new WharfError('ERR_MISMATCHED_OFFSET', { headers });
    if (request.announcesBody === true || (request.contentLength ?? 0) > 0)
      throw new WharfError('ERR_UPLOAD_ALREADY_COMPLETE', { headers });
    if (request.declaredLength !== undefined && request.declaredLength !== record.length)
      throw new WharfError('ERR_UPLOAD_LENGTH_ALREADY_SET');
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
      const removing = record;
      await this.#info.remove(id);
      await this.#data.remove(record.path).catch((error: unknown) => {
        // The record is gone but the bytes may not be: the DELETE failed, and its failure hooks hear it.
        const reason = error instanceof Error ? error.message : String(error);
        this.#failed('termination', removing, describeRequest, { code: 'ERR_INTERNAL', status: 500 }, reason);
        throw error;
      });
    } finally {
      await lock.release();
    }
    this.#options.activity?.terminated(record);
    this.#notify('post-terminate', record, describeRequest);
    // Finals waiting for this partial can never be built now.
    await this.#reviewFinals(record.pendingFinals, describeRequest);
    return hookResponse;
  }

  /** Removes uploads whose expiry passed; returns how many. Runs in the background, never on a request. */
  async sweepExpired(): Promise<number> {
    let removed = 0;
    const orphaned: string[] = [];
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
          this.#failed('expiration', current, expirySweep, expiredFailure, 'removed by the expiration sweep');
          orphaned.push(...current.pendingFinals);
        }
      } finally {
        await lock.release();
      }
    }
    await this.#reviewFinals(orphaned, expirySweep);
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
        // Another deployment's upload in a shared folder or bucket: its copy and bytes are left alone.
        const foreign = await this.#copyingInfo?.foreignPath(id);
        if (foreign !== undefined) {
          recorded.ids.add(id);
          recorded.paths.add(foreign);
          continue;
        }
        await data.removeRecordCopy(id);
      }
    }
    let removed = 0;
    const cutoff = this.#now() - this.#options.expirationMs;
    for await (const { location, modifiedAt } of data.storedLocations()) {
      if (modifiedAt > cutoff || recorded.paths.has(location)) continue;
      const id = location.slice(location.lastIndexOf('/') + 1);
      // Only names Wharf gives uploads: a folder or bucket shared with other files keeps those whatever their age.
      if (!isGeneratedUploadId(id) || recorded.ids.has(id)) continue;
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
    let orphaned: readonly string[] = [];
    const lock = await this.#lock(id, () => undefined);
    try {
      const record = await this.#info.get(id);
      if (!record || record.storage !== this.#data.name) return false;
      await this.#info.remove(id);
      await this.#data.remove(record.path);
      orphaned = record.pendingFinals;
      return true;
    } finally {
      await lock.release();
      await this.#reviewFinals(orphaned, housekeeping);
    }
  }

  /** Opens the stored bytes of a finished upload for download. */
  async download(id: string, range?: { start: number; end: number }): Promise<Readable> {
    const record = await this.get(id);
    return this.#data.read(record.path, range);
  }
}
