import { WharfError } from '../errors.ts';
import type { HookHttpResponse, MergedAnswer } from '../hooks/chain/answers.ts';
import type { HookEngine } from '../hooks/engine.ts';
import type { HookFailure, HookRequest, HookUpload, UploadEvent } from '../hooks/events.ts';
import { failureErrorLine } from '../hooks/failure.ts';
import type { UploadRecord } from '../info/upload-record.ts';
import type { DataStore } from '../storage/data-store.ts';
import type {
  BlockingLifecycleEvent,
  CheckAnswer,
  DescribeRequest,
  StopResponse,
  UploadLifecycleEvent,
  UploadObserver,
} from './events.ts';

/** rustus reports request paths normalised to a trailing slash (`/files/`, `/files/<id>/`); receivers rely on it. */
function withTrailingSlash(uri: string): string {
  const queryAt = uri.indexOf('?');
  const path = queryAt === -1 ? uri : uri.slice(0, queryAt);
  const query = queryAt === -1 ? '' : uri.slice(queryAt);
  return (path.endsWith('/') ? path : `${path}/`) + query;
}

/** Non-critical hooks failed: the answer says so (`Wharf-Hooks: completed with warnings; failed=a,b`). */
function warningResponse(answer: MergedAnswer | undefined, failed: readonly string[]): HookHttpResponse {
  const response = answer?.httpResponse;
  return {
    ...response,
    headers: { ...response?.headers, 'Wharf-Hooks': `completed with warnings; failed=${failed.join(',')}` },
  };
}

/**
 * Turns upload lifecycle steps into hook events: the bridge between uploads/ and the hooks engine, which
 * knows nothing of tus. Payloads are snapshots: the record keeps changing after a post event is emitted.
 */
export class HookObserver implements UploadObserver {
  readonly #engine: HookEngine;
  readonly #dataStore: DataStore;
  readonly #endpoint: string;

  /** `endpoint`: the path of the endpoint this service serves (`/files`), for bindings and `when`. */
  constructor(engine: HookEngine, dataStore: DataStore, endpoint = '') {
    this.#engine = engine;
    this.#dataStore = dataStore;
    this.#endpoint = endpoint;
  }

  onStopUpload(listener: (uploadId: string, response: StopResponse | undefined) => void): void {
    this.#engine.onStopUpload(listener);
  }

  listens(event: UploadLifecycleEvent): boolean {
    return this.#engine.listens(event);
  }

  async check(
    event: BlockingLifecycleEvent,
    upload: UploadRecord,
    request: DescribeRequest,
  ): Promise<CheckAnswer | undefined> {
    const outcome = await this.#engine.runBlocking(this.#event(event, upload, request), request().hookSet);
    if (outcome.kind === 'reject') {
      throw new WharfError('ERR_HOOK_REJECTED', {
        status: outcome.status,
        body: outcome.body,
        headers: outcome.headers,
        message: `${event} hook rejected the request`,
      });
    }
    const warnings = outcome.warnings ?? [];
    const answer =
      warnings.length === 0
        ? outcome.answer
        : { ...outcome.answer, httpResponse: warningResponse(outcome.answer, warnings) };
    if (answer === undefined) return undefined;
    const { status: _status, ...response } = answer.httpResponse ?? { headers: {} };
    return {
      // Only pre-create can change the upload; on other events a change has nothing to apply to.
      ...(answer.changeUpload !== undefined && event === 'pre-create' ? { change: answer.changeUpload } : {}),
      ...(answer.httpResponse !== undefined ? { response } : {}),
    };
  }

  notify(
    event: Exclude<UploadLifecycleEvent, BlockingLifecycleEvent>,
    upload: UploadRecord,
    request: DescribeRequest,
    error?: string,
  ): void {
    const described = request();
    this.#engine.emit(this.#event(event, upload, request, error), described.answered, described.hookSet);
  }

  failed(
    paired: Exclude<UploadLifecycleEvent, BlockingLifecycleEvent>,
    upload: UploadRecord,
    request: DescribeRequest,
    failure: HookFailure,
  ): void {
    const built = this.#event(paired, upload, request);
    const described = request();
    this.#engine.emitFailure(
      { ...built, error: failureErrorLine(failure), failure },
      described.answered,
      described.hookSet,
    );
  }

  recorded(uploadId: string): Promise<void> {
    return this.#engine.numbered(uploadId);
  }

  /**
   * The event as hooks see it. Optional fields are set on the objects once built rather than spread into their
   * literals: a literal with conditional spreads is built property by property in V8's slow path, and post
   * events build these for every request.
   */
  #event(
    name: UploadLifecycleEvent,
    record: UploadRecord,
    describeRequest: DescribeRequest,
    error?: string,
  ): UploadEvent {
    const upload: HookUpload = {
      id: record.id,
      offset: record.offset,
      length: record.length,
      // Nothing is stored before pre-create, so its path is null, as in rustus.
      path: record.path === '' ? null : this.#dataStore.describe(record.path),
      createdAt: Math.floor(record.createdAt / 1000),
      deferredSize: record.length === null,
      isPartial: record.isPartial,
      isFinal: record.isFinal,
      parts: record.parts ? [...record.parts] : null,
      storage: record.storage,
      metadata: record.metadata,
    };
    const described = describeRequest();
    const request: { -readonly [K in keyof HookRequest]: HookRequest[K] } = {
      uri: withTrailingSlash(described.uri),
      method: described.method,
      remoteAddr: described.remoteAddr,
      headers: described.headers,
    };
    if (described.origin !== undefined) request.origin = described.origin;
    request.requestUri = described.uri;
    if (described.peer !== undefined) request.peer = described.peer;
    if (described.protocol !== undefined) request.protocol = described.protocol;
    const event: { -readonly [K in keyof UploadEvent]: UploadEvent[K] } = {
      name,
      upload,
      request,
      endpoint: this.#endpoint,
    };
    if (error !== undefined) event.error = error;
    return event;
  }
}
