/**
 * Upload events, in rustus's names. The hooks engine knows these and the payloads built from them; it knows
 * nothing about HTTP routes: the core turns an upload and its request into an {@link UploadEvent}.
 */
export const uploadEventNames = [
  'pre-create',
  'post-create',
  'post-receive',
  'pre-terminate',
  'post-terminate',
  'post-finish',
  // tusd's pre-finish: after the last byte, before the final PATCH is answered (not in rustus).
  'pre-finish',
] as const;

export type UploadEventName = (typeof uploadEventNames)[number];

/** What deliveries and run records name: an upload event, or `ping` (a test event sent to one target). */
export type HookEventName = UploadEventName | 'ping';

/** rustus's six events: what `--hooks` enables by default (pre-finish must be asked for; rustus hooks lack it). */
export const rustusEventNames: readonly UploadEventName[] = uploadEventNames.filter(
  (name) => name !== 'pre-finish',
);

const eventNameSet: ReadonlySet<string> = new Set(uploadEventNames);

export function isUploadEventName(name: string): name is UploadEventName {
  return eventNameSet.has(name);
}

/** `pre-*` events are filters: the operation waits for them and a failure cancels it. */
export function isBlockingEvent(name: UploadEventName): boolean {
  return name.startsWith('pre-');
}

/** The subscription patterns a module action, filter or named-hook binding may use instead of one event name. */
export const eventPatterns = ['*', 'pre-*', 'post-*'] as const;
export type EventPattern = (typeof eventPatterns)[number];

/**
 * The events an event name or pattern stands for, in {@link uploadEventNames} order: `pre-*` every blocking
 * event, `post-*` every other one, `*` all of them (pre-finish included). Undefined for an unknown name.
 * Patterns are expanded once, at start-up: a handler registered with one runs as if registered on each event.
 */
export function eventsMatching(pattern: string): UploadEventName[] | undefined {
  if (isUploadEventName(pattern)) return [pattern];
  if (pattern === '*') return [...uploadEventNames];
  if (pattern === 'pre-*') return uploadEventNames.filter(isBlockingEvent);
  if (pattern === 'post-*') return uploadEventNames.filter((name) => !isBlockingEvent(name));
  return undefined;
}

/** The upload as hooks see it. Field meanings follow rustus's payloads. */
export interface HookUpload {
  readonly id: string;
  readonly offset: number;
  /** Declared total size; null while the length is deferred (or unknown for a final upload). */
  readonly length: number | null;
  /** Where the data store keeps the bytes; null before the upload exists (pre-create). */
  readonly path: string | null;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly deferredSize: boolean;
  readonly isPartial: boolean;
  readonly isFinal: boolean;
  /** Ids of the partial uploads a final upload concatenates; null otherwise. */
  readonly parts: readonly string[] | null;
  /** The data store's name as rustus spells it, e.g. `file_storage`. */
  readonly storage: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The client request that caused the event. */
export interface HookRequest {
  /** Path and query as rustus reports them (with the trailing slash, e.g. `/files/<id>/`). */
  readonly uri: string;
  /** The effective method, after `X-HTTP-Method-Override`. */
  readonly method: string;
  /** Client address as resolved by the server (`--behind-proxy` aware); null when unknown. */
  readonly remoteAddr: string | null;
  /** Lowercase header names, every value in the order received. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  /**
   * `scheme://host` the client reached (proxy headers believed only with `--behind-proxy`), as for Location
   * URLs; absent when unknown. Not part of the rustus payloads: CloudEvents' default `source` is built from it.
   */
  readonly origin?: string;
  /** The path and query exactly as received (no trailing slash added): tusd-v2's `URI`. */
  readonly requestUri?: string;
  /** The TCP peer as `host:port` (`[::1]:port` for IPv6), whatever proxies say: tusd-v2's `RemoteAddr`. */
  readonly peer?: string;
  /**
   * The upload protocol of the request: `tus-v1`, or `ietf-draft` (Resumable Uploads for HTTP, interop version
   * in the `upload-draft-interop-version` header); absent for events no client request caused (the sweep).
   */
  readonly protocol?: 'tus-v1' | 'ietf-draft';
}

/**
 * Where an upload operation failed (Borgitory's run-on-failure hooks). Each stage is heard by the run-on-failure
 * hooks of every post event whose operation it ends (`failureHeardBy` in failure.ts).
 */
export const failureStages = [
  'pre-create',
  'creation',
  'storage',
  'checksum',
  'pre-finish',
  'concatenation',
  'pre-terminate',
  'termination',
  'expiration',
] as const;
export type FailureStage = (typeof failureStages)[number];

/** A failed operation as run-on-failure hooks receive it (`hook.failure`, a module action's `meta.failure`). */
export interface HookFailure {
  /** The stage that refused or failed. */
  readonly stage: FailureStage;
  /** Wharf's error code (docs/errors.md), e.g. `ERR_HOOK_REJECTED`, `ERR_STORAGE_FULL`. */
  readonly code: string;
  /** The HTTP status the client got (or gets from now on, for a concatenation or an expiry). */
  readonly status: number;
  /** Why, in one line, secrets masked. */
  readonly reason: string;
}

export interface UploadEvent {
  readonly name: UploadEventName;
  readonly upload: HookUpload;
  readonly request: HookRequest;
  /** The endpoint's path (e.g. `/files`); absent means the default endpoint. */
  readonly endpoint?: string;
  /**
   * Set on a post event of an operation that failed (storage error, checksum mismatch, rejected by a pre hook,
   * expired): only hooks with `runOn: failure` or `always` receive it.
   */
  readonly error?: string;
  /** With `error`: which stage failed, its code, the client's status and the reason (run-on-failure hooks). */
  readonly failure?: HookFailure;
  /**
   * The upload's event number: 1 for its first post event, one more for each later one, whichever instance
   * recorded it (a shared outbox store counts them). Receivers order an upload's events by it. Absent on
   * `pre-*` events (answered before the request goes on, so never out of order) and when no count could be
   * had (see docs/hooks.md, "Order").
   */
  readonly sequence?: number;
}

/**
 * Parses a `--hooks` list (`pre-create,post-finish`). Blank items are ignored; an unknown name throws a
 * RangeError naming it, so configuration can report it. An empty list means "no events".
 */
export function parseEventList(list: string): ReadonlySet<UploadEventName> {
  const events = new Set<UploadEventName>();
  for (const item of list.split(',')) {
    const name = item.trim();
    if (name === '') continue;
    if (!isUploadEventName(name)) {
      throw new RangeError(`unknown hook event "${name}"; expected one of ${uploadEventNames.join(', ')}`);
    }
    events.add(name);
  }
  return events;
}
