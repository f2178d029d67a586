import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { HookAnswer } from '../chain/answers.ts';
import type { EventPattern, HookFailure, HookRequest, HookUpload, UploadEventName } from '../events.ts';

/** An upload as modules see it and as `context.uploads` returns it. */
export interface ModuleUpload {
  readonly id: string;
  readonly offset: number;
  readonly length: number | null;
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * Unix seconds, as `createdAt` in hook payloads and rustus's `created_at` (before issue 19: milliseconds;
   * multiply by 1000 for a `Date`).
   */
  readonly createdAt: number;
  readonly finished: boolean;
}

/** What a module may do with uploads: read them, list them, delete them. */
export interface ModuleUploads {
  /** The upload, or undefined when there is none (or it expired). */
  get(id: string): Promise<ModuleUpload | undefined>;
  /** Every upload (finished or not), in no particular order. */
  list(): AsyncIterable<ModuleUpload>;
  /** Removes the upload and its bytes; no hooks fire. False when there was none. */
  delete(id: string): Promise<boolean>;
  /** The stored bytes. */
  read(id: string): Promise<Readable>;
}

/** A listener of the modules' event bus; what it returns is ignored, what it throws or rejects is logged. */
export type ModuleEventListener = (...args: unknown[]) => unknown;

/**
 * `context.emitter`: the event bus all hook modules of the process share. Listeners run in registration order;
 * an error in one is logged (naming its module), never thrown to the emitter. Every listener is removed at
 * shutdown (after `server.stop`); `on` and `once` return a disposer that removes the listener earlier.
 */
export interface ModuleEmitter {
  /** Calls the event's listeners; resolves with how many ran once all settled (await it or not: never rejects). */
  emit(event: string, ...args: unknown[]): Promise<number>;
  on(event: string, listener: ModuleEventListener): () => void;
  /** As `on`, removed before its first call. */
  once(event: string, listener: ModuleEventListener): () => void;
  /** Removes one registration of the listener; false when it had none. */
  off(event: string, listener: ModuleEventListener): boolean;
}

/** The logger given to modules (a pino child logger fits). */
export interface ModuleLogger {
  info(object: Record<string, unknown>, message?: string): void;
  warn(object: Record<string, unknown>, message?: string): void;
  error(object: Record<string, unknown>, message?: string): void;
  debug(object: Record<string, unknown>, message?: string): void;
}

/** The second argument of `register` and the third of every handler. */
export interface HookModuleContext<Settings extends object = object> {
  readonly logger: ModuleLogger;
  /** Wharf's parsed configuration. */
  readonly config: Settings;
  /** The environment Wharf was started with. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly uploads: ModuleUploads;
  /** Arguments given to this module by a named hook binding (empty otherwise). */
  readonly args: Readonly<Record<string, unknown>>;
  /** The event bus shared by every module of the process. */
  readonly emitter: ModuleEmitter;
}

/** What a filter receives: the upload before the operation, with metadata it may rewrite. */
export interface FilterPayload {
  id: string;
  metadata: Record<string, string>;
  readonly offset: number;
  readonly length: number | null;
  readonly isPartial: boolean;
  readonly isFinal: boolean;
}

/** The event around a filter or action payload. */
export interface HookMeta {
  readonly event: UploadEventName;
  readonly eventId: string;
  readonly request: HookRequest;
  /** The upload as every hook sees it (a snapshot). */
  readonly upload: HookUpload;
  /** For runOn failure hooks: why the operation failed. */
  readonly error?: string;
  /** For runOn failure hooks: the stage that failed, its error code, the client's status and the reason. */
  readonly failure?: HookFailure;
}

/**
 * Returns the payload (changed or not), or a tusd-style answer (`{ reject, httpResponse, changeUpload }`).
 * Throwing a HookError cancels with its status and message.
 */
export type FilterHandler<Settings extends object = object> = (
  payload: FilterPayload,
  meta: HookMeta,
  context: HookModuleContext<Settings>,
) => FilterPayload | HookAnswer | undefined | Promise<FilterPayload | HookAnswer | undefined>;

/**
 * Runs after the fact; what it throws is recorded, never sent to a client. What it returns is ignored, except
 * tusd 2's `{ StopUpload: true }` from a post-receive action, which stops and terminates the upload; any other
 * answer is recorded on the run as not honoured.
 */
export type ActionHandler<Settings extends object = object> = (
  payload: HookUpload,
  meta: HookMeta,
  context: HookModuleContext<Settings>,
) => unknown;

export const initEventNames = ['server.start', 'server.stop', 'routes.before', 'routes.after'] as const;
export type InitEventName = (typeof initEventNames)[number];

export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: Readonly<Record<string, string>>,
) => unknown;

/** Custom routes (`routes.before` ones are tried before the tus endpoint, `routes.after` ones after it). */
export interface HookRouter {
  get(path: string, handler: RouteHandler): void;
  post(path: string, handler: RouteHandler): void;
  put(path: string, handler: RouteHandler): void;
  patch(path: string, handler: RouteHandler): void;
  delete(path: string, handler: RouteHandler): void;
  all(path: string, handler: RouteHandler): void;
}

export interface InitMeta {
  readonly event: InitEventName;
  /** Set for `routes.before` and `routes.after`. */
  readonly router?: HookRouter;
}

export type InitHandler<Settings extends object = object> = (
  meta: InitMeta,
  context: HookModuleContext<Settings>,
) => unknown;

/** Which run of a schedule this is. */
export interface ScheduledRun {
  /** The time the run was due (a whole second), the same on every instance: a name for this run. */
  readonly scheduledAt: Date;
}

export type ScheduleHandler<Settings extends object = object> = (
  context: HookModuleContext<Settings>,
  run: ScheduledRun,
) => unknown;

/** The first argument of `register`. */
export interface HookRegistrar<Settings extends object = object> {
  /** `pre-*` and `*` register the filter on every blocking event (`meta.event` says which one runs). */
  filter(event: UploadEventName | EventPattern, handler: FilterHandler<Settings>): void;
  /**
   * `post-*` and `*` register the action on every post event (`meta.event` says which one runs).
   * `runOn`: `success` (default), `failure` (the operation failed; `meta.error` says why) or `always`. */
  action(
    event: UploadEventName | EventPattern,
    handler: ActionHandler<Settings>,
    options?: { readonly runOn?: 'success' | 'failure' | 'always' },
  ): void;
  init(event: InitEventName, handler: InitHandler<Settings>): void;
  /**
   * 5 or 6 fields (seconds first); a run never overlaps the previous one of the same schedule. Instances sharing
   * Redis or PostgreSQL run each due time once among them, and in a `--workers` cluster worker slot 1 runs it.
   */
  schedule(cron: string, handler: ScheduleHandler<Settings>): void;
}

/** A hook module's default export. */
export type HookModule<Settings extends object = object> = (
  hooks: HookRegistrar<Settings>,
  context: HookModuleContext<Settings>,
) => void | Promise<void>;
