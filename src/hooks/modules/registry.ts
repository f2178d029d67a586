import {
  type HookAnswer,
  HookAnswerError,
  type HookHttpResponse,
  hookAnswerFrom,
  isHookAnswer,
  type MergedAnswer,
  mergeAnswers,
} from '../chain/answers.ts';
import type { RunOn } from '../chain/pipeline.ts';
import type { HookUpload, UploadEvent, UploadEventName } from '../events.ts';
import { CronSchedule } from './cron.ts';
import { ModuleEventBus } from './emitter.ts';
import { asHookError } from './hook-error.ts';
import { ModuleRouter } from './router.ts';
import type {
  ActionHandler,
  FilterHandler,
  FilterPayload,
  HookMeta,
  HookModuleContext,
  InitEventName,
  InitHandler,
  ModuleLogger,
  ScheduledRun,
  ScheduleHandler,
} from './types.ts';

interface Registered<Handler> {
  /** The module's folder, as run records and logs name it. */
  readonly module: string;
  readonly handler: Handler;
  readonly context: HookModuleContext;
}

interface ScheduledJob extends Registered<ScheduleHandler> {
  readonly cron: CronSchedule;
  running: boolean;
}

/**
 * Takes run `tick` (the second it is due) of schedule `job` for this process among the instances that share a
 * backend: resolves with a lease to release after the run, or undefined when another instance has it.
 */
export type ScheduleGate = (job: string, tick: number) => Promise<{ release(): Promise<void> } | undefined>;

/** One module handler's run, for the engine's run log. */
export interface ModuleRun {
  /** `module:<folder>` */
  readonly target: string;
  readonly status: 'completed' | 'failed' | 'skipped' | 'timed_out';
  readonly durationMs: number;
  readonly error?: string;
  /** A post-receive action answered tusd 2's StopUpload (with this response for the stopped request). */
  readonly stopUpload?: { readonly response?: HookHttpResponse };
}

/** A module run through a named hook's binding, with the merged args. */
export interface BoundRun {
  readonly module: string;
  readonly args: Readonly<Record<string, unknown>>;
}

export type FilterOutcome =
  | { readonly kind: 'continue'; readonly upload: HookUpload; readonly answer?: MergedAnswer }
  | {
      readonly kind: 'reject';
      readonly status: number;
      readonly body: string;
      readonly headers: Record<string, string>;
      /** True when the handler broke (not a HookError or a reject answer: a decision). */
      readonly broken?: boolean;
    };

/** One filter of one module, as a chain entry runs it. */
export interface FilterStep {
  readonly module: string;
  /** `module:<folder>` */
  readonly target: string;
  run(event: UploadEvent, eventId: string, timeoutMs: number): Promise<FilterStepResult>;
}

/** How one filter went: its run (for the run record) and its decision (its own answer, not merged). */
export interface FilterStepResult {
  readonly run: ModuleRun;
  readonly outcome: FilterOutcome;
}

/** One action of one module, as a chain entry runs it. */
export interface ActionStep {
  readonly module: string;
  readonly target: string;
  readonly runOn: RunOn;
  /** The registered handler: one handler bound to several events hears a failure once. */
  readonly handler?: unknown;
  run(event: UploadEvent, eventId: string): Promise<ModuleRun>;
}

const plainText = 'text/plain; charset=utf-8';

/** A filter still running at its timeout: the operation does not wait for it any longer. */
class FilterTimeoutError extends Error {
  constructor(module: string, timeoutMs: number) {
    super(`Hook module "${module}" did not answer within ${timeoutMs} ms`);
    this.name = 'FilterTimeoutError';
  }
}

/** Settles with the promise, or rejects after `timeoutMs` (the handler cannot be stopped, only abandoned). */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number, module: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FilterTimeoutError(module, timeoutMs)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isAnswer(value: object): boolean {
  return isHookAnswer(value);
}

function sameMetadata(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => b[key] === a[key]);
}

/**
 * What hook modules registered: filters per blocking event, actions per post event, init handlers, schedules
 * and the routes added on `routes.before` / `routes.after`. It runs them; the engine records the runs.
 */
export class HookModules {
  readonly modules: string[] = [];
  readonly filters = new Map<UploadEventName, Registered<FilterHandler>[]>();
  readonly actions = new Map<UploadEventName, (Registered<ActionHandler> & { readonly runOn: RunOn })[]>();
  readonly inits = new Map<InitEventName, Registered<InitHandler>[]>();
  readonly schedules: ScheduledJob[] = [];
  /** Routes tried before the tus endpoint. */
  readonly routesBefore = new ModuleRouter();
  /** Routes tried when the tus endpoint does not own the path. */
  readonly routesAfter = new ModuleRouter();
  /** `context.emitter` of every module: closed (every listener removed) by {@link HookModules.stopEmitter}. */
  readonly emitter: ModuleEventBus;
  readonly #logger: ModuleLogger;
  /** Modules named hooks refer to: their filters and actions run only through their bindings. */
  readonly #bound = new Set<string>();
  /** What ends with the modules (isolated modules' worker threads). */
  readonly #onStop: (() => Promise<void>)[] = [];
  /** Resolve once an isolated module has no run in flight. */
  readonly #idle: ((waitMs: number) => Promise<void>)[] = [];
  #ticker: NodeJS.Timeout | undefined;
  #lastTick = 0;
  #gate: ScheduleGate | undefined;

  constructor(logger: ModuleLogger) {
    this.#logger = logger;
    this.emitter = new ModuleEventBus(logger);
  }

  /** Removes every module's event listeners (shutdown, after the `server.stop` handlers ran). */
  stopEmitter(): void {
    this.emitter.close();
    // Isolated modules' worker threads end with the bus they talk to.
    for (const stop of this.#onStop.splice(0)) void stop().catch(() => undefined);
  }

  /**
   * Runs `stop` at shutdown (an isolated module's worker thread); `idle` resolves once its runs in flight are
   * done (or after the wait), for {@link HookModules.retire}.
   */
  closeOnStop(stop: () => Promise<void>, idle?: (waitMs: number) => Promise<void>): void {
    this.#onStop.push(stop);
    if (idle !== undefined) this.#idle.push(idle);
  }

  /**
   * Ends modules a reload replaced: their schedules stop, their `server.stop` handlers run, and once the
   * isolated modules' runs in flight are done (at most `waitMs`) their worker threads end and their listeners
   * are removed. Never throws: a failing `server.stop` is logged.
   */
  async retire(waitMs: number): Promise<void> {
    this.stopSchedules();
    await this.init('server.stop').catch((error: unknown) => {
      this.#logger.error({ err: error }, 'a replaced hook module failed on server.stop');
    });
    await Promise.all(this.#idle.map((idle) => idle(waitMs)));
    this.stopEmitter();
  }

  static empty(logger: ModuleLogger): HookModules {
    return new HookModules(logger);
  }

  /** Makes these modules run only where named hooks bind them; throws for a module that was not loaded. */
  bind(modules: readonly string[]): void {
    const loaded = new Set(this.modules.map((file) => file.split(/[\\/]/).at(-2)));
    for (const name of modules) {
      if (!loaded.has(name))
        throw new Error(`a named hook refers to the hook module "${name}", which is not loaded`);
      this.#bound.add(name);
    }
  }

  #global<Entry extends { readonly module: string }>(entries: readonly Entry[] | undefined): Entry[] {
    return (entries ?? []).filter((entry) => !this.#bound.has(entry.module));
  }

  hasFilters(event: UploadEventName): boolean {
    return this.#global(this.filters.get(event)).length > 0;
  }

  hasActions(event: UploadEventName): boolean {
    return this.#global(this.actions.get(event)).length > 0;
  }

  /** `module:<folder>` for every filter of the event, in order. */
  filterTargets(event: UploadEventName): string[] {
    return this.#global(this.filters.get(event)).map((entry) => `module:${entry.module}`);
  }

  actionTargets(event: UploadEventName): string[] {
    return this.#global(this.actions.get(event)).map((entry) => `module:${entry.module}`);
  }

  /** Narrows a run to one bound module, whose handlers then see the binding's args. */
  #select<Entry extends Registered<unknown>>(
    entries: readonly Entry[] | undefined,
    only: BoundRun | undefined,
  ): Entry[] {
    if (only === undefined) return this.#global(entries);
    return (entries ?? [])
      .filter((entry) => entry.module === only.module)
      .map((entry) => ({ ...entry, context: { ...entry.context, args: only.args } }));
  }

  /**
   * The event's filters, one step each, in registration order: the chain runs them one by one (each receiving
   * the upload as the previous entries left it) and records them. A HookError or a reject answer is the
   * filter's decision; any other failure is `broken` (500, 502 for an invalid answer, 504 at its timeout).
   */
  filterSteps(event: UploadEventName, only?: BoundRun): FilterStep[] {
    return this.#select(this.filters.get(event), only).map((entry) => ({
      module: entry.module,
      target: `module:${entry.module}`,
      run: (uploadEvent, eventId, timeoutMs) => this.#runFilter(entry, uploadEvent, eventId, timeoutMs),
    }));
  }

  async #runFilter(
    entry: Registered<FilterHandler>,
    event: UploadEvent,
    eventId: string,
    timeoutMs: number,
  ): Promise<FilterStepResult> {
    const extra = event.error !== undefined ? { error: event.error } : {};
    const target = `module:${entry.module}`;
    let upload = event.upload;
    let answer: MergedAnswer | undefined;
    const payload: FilterPayload = {
      id: upload.id,
      metadata: { ...upload.metadata },
      offset: upload.offset,
      length: upload.length,
      isPartial: upload.isPartial,
      isFinal: upload.isFinal,
    };
    const meta: HookMeta = { event: event.name, eventId, request: event.request, upload, ...extra };
    const started = performance.now();
    try {
      const returned: unknown = await withTimeout(
        Promise.resolve().then(() => entry.handler(payload, meta, entry.context)),
        timeoutMs,
        entry.module,
      );
      let change: { id?: string; metadata?: Record<string, string> } = {};
      let notHonoured: readonly string[] | undefined;
      if (typeof returned === 'object' && returned !== null && isAnswer(returned)) {
        const parsed = hookAnswerFrom(returned, event.name);
        notHonoured = parsed?.notHonoured;
        if (parsed?.notHonoured !== undefined) {
          this.#logger.warn(
            { module: entry.module, event: event.name, notHonoured: parsed.notHonoured },
            'hook module answer not honoured in part',
          );
        }
        if (parsed?.reject) {
          const response = parsed.httpResponse;
          const tusd = parsed.tusdRejection;
          return {
            run: { target, status: 'failed', durationMs: elapsed(started), error: 'rejected by its answer' },
            outcome: {
              kind: 'reject',
              status: response?.status !== undefined && response.status >= 400 ? response.status : 400,
              body:
                response?.body ??
                (tusd !== undefined
                  ? `${tusd.code}: ${tusd.message}\n`
                  : `Hook module "${entry.module}" rejected the request`),
              headers: { 'Content-Type': plainText, ...response?.headers },
            },
          };
        }
        if (parsed !== undefined) {
          answer = mergeAnswers(answer, parsed);
          change = { ...parsed.changeUpload };
        }
      } else if (typeof returned === 'object' && returned !== null) {
        const next = returned as Partial<FilterPayload>;
        if (typeof next.id === 'string' && next.id !== upload.id) change.id = next.id;
        if (
          typeof next.metadata === 'object' &&
          next.metadata !== null &&
          !sameMetadata(next.metadata, upload.metadata)
        ) {
          const metadata = hookAnswerFrom({ changeUpload: { metadata: next.metadata } })?.changeUpload
            ?.metadata;
          if (metadata !== undefined) change.metadata = { ...metadata };
        }
        if (change.id !== undefined || change.metadata !== undefined) {
          answer = mergeAnswers(answer, { reject: false, changeUpload: change });
        }
      }
      if (change.id !== undefined) upload = { ...upload, id: change.id };
      if (change.metadata !== undefined) upload = { ...upload, metadata: change.metadata };
      return {
        run: {
          target,
          status: 'completed',
          durationMs: elapsed(started),
          ...(notHonoured !== undefined ? { error: `answer not honoured: ${notHonoured.join('; ')}` } : {}),
        },
        outcome: answer === undefined ? { kind: 'continue', upload } : { kind: 'continue', upload, answer },
      };
    } catch (error) {
      let outcome: FilterOutcome;
      const hookError = asHookError(error);
      if (hookError !== undefined) {
        outcome = {
          kind: 'reject',
          status: hookError.status,
          body: hookError.message,
          headers: { 'Content-Type': plainText, ...hookError.headers },
        };
      } else {
        const invalid = error instanceof HookAnswerError;
        const timedOut = error instanceof FilterTimeoutError;
        this.#logger.error(
          { err: error, module: entry.module, event: event.name },
          'hook module filter failed',
        );
        outcome = {
          kind: 'reject',
          broken: true,
          status: timedOut ? 504 : invalid ? 502 : 500,
          body: timedOut
            ? error.message
            : invalid
              ? `Hook module "${entry.module}" answered an invalid response: ${error.message}`
              : `Hook module "${entry.module}" failed`,
          headers: { 'Content-Type': plainText },
        };
      }
      // A filter abandoned at its timeout did not fail on its own: the run log tells the two apart.
      return {
        run: {
          target,
          status: error instanceof FilterTimeoutError ? 'timed_out' : 'failed',
          durationMs: elapsed(started),
          error: messageOf(error),
        },
        outcome,
      };
    }
  }

  /**
   * The event's actions, one step each, with their own `runOn` (a bound module's is its named hook's: the
   * chain checks that one instead).
   */
  actionSteps(event: UploadEventName, only?: BoundRun): ActionStep[] {
    return this.#select(this.actions.get(event), only).map((entry) => ({
      module: entry.module,
      target: `module:${entry.module}`,
      runOn: entry.runOn,
      handler: entry.handler,
      run: (uploadEvent, eventId) => this.#runAction(entry, uploadEvent, eventId),
    }));
  }

  async #runAction(
    entry: Registered<ActionHandler>,
    event: UploadEvent,
    eventId: string,
  ): Promise<ModuleRun> {
    const target = `module:${entry.module}`;
    const started = performance.now();
    const meta: HookMeta = {
      event: event.name,
      eventId,
      request: event.request,
      upload: event.upload,
      ...(event.error !== undefined ? { error: event.error } : {}),
      ...(event.failure !== undefined ? { failure: event.failure } : {}),
    };
    try {
      const returned: unknown = await entry.handler(event.upload, meta, entry.context);
      let answer: HookAnswer | undefined;
      let notHonoured: readonly string[] | undefined;
      try {
        answer = hookAnswerFrom(returned, event.name);
        notHonoured = answer?.notHonoured;
      } catch (cause) {
        if (!(cause instanceof HookAnswerError)) throw cause;
        notHonoured = [`invalid answer: ${cause.message}`];
      }
      if (notHonoured !== undefined) {
        this.#logger.warn(
          { module: entry.module, event: event.name, notHonoured },
          'hook module answer not honoured in part',
        );
      }
      return {
        target,
        status: 'completed',
        durationMs: elapsed(started),
        ...(notHonoured !== undefined ? { error: `answer not honoured: ${notHonoured.join('; ')}` } : {}),
        ...(answer?.stopUpload === true
          ? { stopUpload: answer.httpResponse !== undefined ? { response: answer.httpResponse } : {} }
          : {}),
      };
    } catch (error) {
      this.#logger.warn({ err: error, module: entry.module, event: event.name }, 'hook module action failed');
      return { target, status: 'failed', durationMs: elapsed(started), error: messageOf(error) };
    }
  }

  /** Runs the init handlers of one event in order; a failure is thrown (start-up then fails). */
  async init(event: InitEventName): Promise<void> {
    for (const entry of this.inits.get(event) ?? []) {
      const router =
        event === 'routes.before'
          ? this.routesBefore.forModule(entry.module)
          : event === 'routes.after'
            ? this.routesAfter.forModule(entry.module)
            : undefined;
      try {
        await entry.handler(router === undefined ? { event } : { event, router }, entry.context);
      } catch (error) {
        throw new Error(`hook module ${entry.module}: init ${event} failed: ${messageOf(error)}`, {
          cause: error,
        });
      }
    }
  }

  /**
   * Checks the schedules every second; a schedule still running when it is due again is not started twice.
   * With a `gate` (instances sharing Redis or PostgreSQL), each due run first takes the job's cluster-wide
   * lease, so one instance runs it.
   */
  startSchedules(gate?: ScheduleGate): void {
    if (this.schedules.length === 0 || this.#ticker !== undefined) return;
    this.#gate = gate;
    this.#lastTick = Math.floor(Date.now() / 1000);
    const tick = (): void => {
      const now = Math.floor(Date.now() / 1000);
      // Every second since the last tick is checked once, so a late timer does not miss a due run.
      for (let second = this.#lastTick + 1; second <= now; second++) {
        const date = new Date(second * 1000);
        for (const job of this.schedules) if (job.cron.matches(date)) this.#runScheduled(job, second);
      }
      this.#lastTick = Math.max(this.#lastTick, now);
      this.#ticker = setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
      this.#ticker.unref();
    };
    this.#ticker = setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
    this.#ticker.unref();
  }

  stopSchedules(): void {
    clearTimeout(this.#ticker);
    this.#ticker = undefined;
  }

  #runScheduled(job: ScheduledJob, second: number): void {
    if (job.running) {
      this.#logger.warn(
        { module: job.module, cron: job.cron.expression },
        'schedule still running; this run is skipped',
      );
      return;
    }
    job.running = true;
    const run: ScheduledRun = { scheduledAt: new Date(second * 1000) };
    const gate = this.#gate;
    const fields = { module: job.module, cron: job.cron.expression };
    (gate === undefined ? Promise.resolve(undefined) : gate(this.#jobName(job), second))
      .then(
        async (lease) => {
          // Another instance won this run, or still runs an earlier one.
          if (gate !== undefined && lease === undefined) return;
          try {
            await job.handler(job.context, run);
          } catch (error) {
            this.#logger.error({ err: error, ...fields }, 'hook module schedule failed');
          } finally {
            await lease?.release();
          }
        },
        (error: unknown) => {
          // When the shared backend does not answer, no instance can know it is alone: the run is skipped.
          this.#logger.warn(
            { err: error, ...fields },
            'schedule not run: its cluster-wide lease could not be taken',
          );
        },
      )
      .finally(() => {
        job.running = false;
      });
  }

  /** The job's name among instances: its module, expression and rank among that module's equal expressions. */
  #jobName(job: ScheduledJob): string {
    let rank = 0;
    for (const other of this.schedules) {
      if (other === job) break;
      if (other.module === job.module && other.cron.expression === job.cron.expression) rank++;
    }
    return `schedule:${job.module}:${job.cron.expression}:${rank}`;
  }

  /** One line per registered hook, for `wharf hooks check`. */
  describe(): string[] {
    const lines: string[] = [];
    for (const [event, entries] of this.filters)
      for (const entry of entries) lines.push(`filter ${event} module:${entry.module}`);
    for (const [event, entries] of this.actions)
      for (const entry of entries) lines.push(`action ${event} module:${entry.module}`);
    for (const [event, entries] of this.inits)
      for (const entry of entries) lines.push(`init ${event} module:${entry.module}`);
    for (const job of this.schedules) lines.push(`schedule "${job.cron.expression}" module:${job.module}`);
    return lines;
  }
}

export { CronSchedule };
