import { WharfError } from '../errors.ts';
import type { HookEngine } from '../hooks/engine.ts';
import type { HookRequest, HookUpload, UploadEvent } from '../hooks/events.ts';
import type { DataStore } from '../storage/data-store.ts';
import type {
  BlockingLifecycleEvent,
  CheckAnswer,
  DescribeRequest,
  UploadLifecycleEvent,
  UploadObserver,
} from './events.ts';
import type { UploadRecord } from './upload.ts';

/** rustus reports request paths normalised to a trailing slash (`/files/`, `/files/<id>/`); receivers rely on it. */
function withTrailingSlash(uri: string): string {
  const queryAt = uri.indexOf('?');
  const path = queryAt === -1 ? uri : uri.slice(0, queryAt);
  const query = queryAt === -1 ? '' : uri.slice(queryAt);
  return (path.endsWith('/') ? path : `${path}/`) + query;
}

/**
 * Turns upload lifecycle steps into hook events: the bridge between uploads/ and the hooks engine, which
 * knows nothing of tus. Payloads are snapshots: the record keeps changing after a post event is emitted.
 */
export class HookObserver implements UploadObserver {
  readonly #engine: HookEngine;
  readonly #dataStore: DataStore;

  constructor(engine: HookEngine, dataStore: DataStore) {
    this.#engine = engine;
    this.#dataStore = dataStore;
  }

  listens(event: UploadLifecycleEvent): boolean {
    return this.#engine.listens(event);
  }

  async check(
    event: BlockingLifecycleEvent,
    upload: UploadRecord,
    request: DescribeRequest,
  ): Promise<CheckAnswer | undefined> {
    const outcome = await this.#engine.runBlocking(this.#event(event, upload, request));
    if (outcome.kind === 'reject') {
      throw new WharfError('ERR_HOOK_REJECTED', {
        status: outcome.status,
        body: outcome.body,
        headers: outcome.headers,
        message: `${event} hook rejected the request`,
      });
    }
    const answer = outcome.answer;
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
  ): void {
    this.#engine.emit(this.#event(event, upload, request));
  }

  #event(name: UploadLifecycleEvent, record: UploadRecord, describeRequest: DescribeRequest): UploadEvent {
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
    const request: HookRequest = {
      uri: withTrailingSlash(described.uri),
      method: described.method,
      remoteAddr: described.remoteAddr,
      headers: described.headers,
    };
    return { name, upload, request };
  }
}
