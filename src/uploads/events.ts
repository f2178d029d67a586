import type { AnswerStatus, HookSet } from '../hooks/engine.ts';
import type { HookFailure } from '../hooks/events.ts';
import type { UploadRecord } from '../info/upload-record.ts';

/** The events an operation waits for; a failure cancels it. */
export type BlockingLifecycleEvent = 'pre-create' | 'pre-terminate' | 'pre-finish';

export type UploadLifecycleEvent =
  | 'pre-create'
  | 'post-create'
  | 'post-receive'
  | 'pre-terminate'
  | 'post-terminate'
  | 'post-finish'
  | 'pre-finish';

/** What the lifecycle knows about the request that caused an event (built lazily, only when listened to). */
export interface RequestDescription {
  readonly uri: string;
  readonly method: string;
  readonly remoteAddr: string | null;
  /** Lowercase names, every value in arrival order. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  /** `scheme://host` as the client reached it (see requestOrigin in tus/request-info.ts); absent when unknown. */
  readonly origin?: string;
  /** The TCP peer as `host:port` (`[::1]:port` for IPv6), as Go's `RemoteAddr` spells it; absent when unknown. */
  readonly peer?: string;
  /** The upload protocol the request spoke: `tus-v1`, or `ietf-draft` (Resumable Uploads for HTTP). */
  readonly protocol?: 'tus-v1' | 'ietf-draft';
  /**
   * Gives a promise of the status code of the answer once it is sent (undefined when the connection ended before
   * one was), called only when a post hook whose `when` tests `status` runs: such hooks wait for it.
   */
  readonly answered?: AnswerStatus;
  /** The named hooks current when the request started: every event of the request runs with them. */
  readonly hookSet?: HookSet;
}

export type DescribeRequest = () => RequestDescription;

/** What answering pre-* hooks asked for when they let the operation go on. */
export interface CheckAnswer {
  /** pre-create only: the upload's id, metadata or storage location, chosen by a hook. */
  readonly change?: {
    readonly id?: string;
    readonly metadata?: Readonly<Record<string, string>>;
    readonly path?: string;
  };
  /** Headers (and a body) added to the normal answer. */
  readonly response?: { readonly body?: string; readonly headers: Readonly<Record<string, string>> };
}

/**
 * How the upload lifecycle tells the outside world (the hooks engine) what happens. Blocking events may
 * throw a WharfError to cancel the operation; notifications never delay or fail the request.
 */
export interface UploadObserver {
  listens(event: UploadLifecycleEvent): boolean;
  /** pre-create, pre-terminate: resolves to continue (maybe with an answer), rejects with a WharfError to cancel. */
  check(
    event: BlockingLifecycleEvent,
    upload: UploadRecord,
    request: DescribeRequest,
  ): Promise<CheckAnswer | undefined>;
  /** post-* events: fire and forget. `error` is set when the operation failed (run-on-failure hooks). */
  notify(
    event: Exclude<UploadLifecycleEvent, BlockingLifecycleEvent>,
    upload: UploadRecord,
    request: DescribeRequest,
    error?: string,
  ): void;
  /**
   * An operation failed (a hook refused it, a store failed it): told to the run-on-failure hooks of every post
   * event whose operation it ends, as `paired` (the stage's own post event) with `error` and `failure`.
   * Optional: without it the service calls {@link notify} with the error on `paired`.
   */
  failed?(
    paired: Exclude<UploadLifecycleEvent, BlockingLifecycleEvent>,
    upload: UploadRecord,
    request: DescribeRequest,
    failure: HookFailure,
  ): void;
  /**
   * Resolves once the post events notified so far for the upload hold their place in its event order (a
   * shared outbox store counted them); the service waits for it before it lets go of the upload. Optional.
   */
  recorded?(uploadId: string): Promise<void>;
  /**
   * Registers the service's handler for a hook asking to stop an upload (tusd 2's `StopUpload` on
   * post-receive), with the response the stopped request should get.
   */
  onStopUpload?(listener: (uploadId: string, response: StopResponse | undefined) => void): void;
}

/** What a stopping hook asked the stopped request to answer (tusd's HTTPResponse). */
export interface StopResponse {
  readonly status?: number;
  readonly body?: string;
  readonly headers: Readonly<Record<string, string>>;
}

export const silentObserver: UploadObserver = {
  listens: () => false,
  check: async () => undefined,
  notify: () => undefined,
};
