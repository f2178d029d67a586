import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import {
  type HookAnswer,
  HookAnswerError,
  type HookHttpResponse,
  type MergedAnswer,
  mergeAnswers,
  parseHookAnswer,
} from './answers.ts';
import { cloudEventEnvironment } from './cloudevents-bindings.ts';
import type { DeliveryControl } from './delivery-control.ts';
import { failureOf } from './delivery-verdict.ts';
import { frozenConfig, type HooksConfig } from './engine-config.ts';
import { HookConfigError } from './errors.ts';
import { UploadSequencer } from './event-sequence.ts';
import type { UploadEvent, UploadEventName } from './events.ts';
import { type FormattedEvent, formatEvent } from './formats/index.ts';
import type { BoundRun, HookModules, ModuleRun } from './modules/registry.ts';
import { Outbox } from './outbox.ts';
import { OutboxControl } from './outbox-control.ts';
import { FileOutboxStore } from './outbox-file-store.ts';
import { type OutboxStore, sequenceSourceOf } from './outbox-store.ts';
import { type BoundHook, boundModules, Pipeline, type PipelineConfig, runsFor } from './pipeline.ts';
import { PostQueue } from './post-queue.ts';
import { type BlockingOutcome, reject, rejectionByAnswer, rejectionFor } from './rejections.ts';
import { defaultRetrySchedule } from './retry-policy.ts';
import { RunLog, type RunRecord, type RunStatus } from './run-log.ts';
import { redactTarget, redactTargetText } from './target-guard.ts';
import { AmqpHookTransport } from './transports/amqp.ts';
import { DirHookTransport, FileHookTransport } from './transports/file.ts';
import { HttpHookTransport } from './transports/http.ts';
import { KafkaHookTransport } from './transports/kafka.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './transports/types.ts';

/** What the engine needs from a logger; a pino logger fits. */
export interface HookLogger {
  info(object: Record<string, unknown>, message: string): void;
  warn(object: Record<string, unknown>, message: string): void;
  error(object: Record<string, unknown>, message: string): void;
  debug(object: Record<string, unknown>, message: string): void;
}

/** Told of a post-receive hook's `StopUpload` answer. */
export type StopUploadListener = (uploadId: string, response: HookHttpResponse | undefined) => void;

/** What a run record says beyond the delivery and its status. */
interface RunExtra {
  error?: string;
  exitCode?: number;
  httpStatus?: number;
  output?: string;
  attempt?: number;
}

export interface HookEngineOptions {
  /** Run records kept in memory (default 1000). */
  readonly runLogCapacity?: number;
  /** The environment hook executables inherit before Wharf's additions (default: Wharf's own). */
  readonly executableEnv?: NodeJS.ProcessEnv;
  /** Loaded hook modules: their filters run before the other blocking hooks, their actions with post hooks. */
  readonly modules?: HookModules;
  /** Named hooks and their bindings (the config file): run after the flag-defined targets, in order. */
  readonly pipeline?: PipelineConfig;
  /**
   * Where the outbox keeps undelivered events: a shared store (Redis, PostgreSQL) lets another instance deliver
   * the events of one that died. Default: the journal file in `outboxDirectory`.
   */
  readonly outboxStore?: OutboxStore;
}

const skippedAfterFailure = 'not run: an earlier blocking hook failed';

/** One blocking delivery, its answer read. */
interface BlockingDelivery {
  readonly result: DeliveryResult;
  readonly record: RunRecord;
  readonly answer?: HookAnswer;
  readonly invalidAnswer?: string;
}

function runStatusOf(result: DeliveryResult): RunStatus {
  if (result.kind === 'delivered') return 'completed';
  if (result.kind === 'timed_out') return 'timed_out';
  return 'failed';
}

/** How much of an executable's stderr one log line carries (the transport keeps at most 4 KiB of it). */
const stderrLogLimit = 1024;

function excerpt(text: string, limit = 200): string {
  const trimmed = text.trim();
  return trimmed.length <= limit ? trimmed : `${trimmed.slice(0, limit)}…`;
}

/** The run record's error: the verdict's description, with an executable's stderr after it. */
function errorOf(result: DeliveryResult): string | undefined {
  if (result.kind === 'delivered') return undefined;
  const failure = failureOf(result);
  const stderr = result.kind === 'exited' ? excerpt(result.stderr) : '';
  return stderr === '' ? failure : `${failure}: ${stderr}`;
}

/**
 * Delivers upload events to the configured hooks (file, dir, HTTP), rustus-compatible.
 *
 * Blocking events ({@link HookEngine.runBlocking}) visit the targets in order (file, dir, then each URL) and
 * stop at the first failure, which becomes the client's answer. Non-blocking events ({@link HookEngine.emit})
 * go to every target independently through a bounded queue and never hold up the request. Every delivery is
 * recorded in {@link HookEngine.runs}.
 *
 * @example
 * const engine = new HookEngine({ ...config, httpUrls: ['http://localhost:8080/hooks'] }, logger);
 * const outcome = await engine.runBlocking(event); // { kind: 'continue' } or { kind: 'reject', status, ... }
 * engine.emit(postEvent);
 * await engine.drain(5000);
 * await engine.close();
 */
export class HookEngine {
  readonly runs: RunLog;
  readonly config: HooksConfig;
  /** Targets' health, dead letters, resend, ping, runtime targets (the admin API's view of delivery). */
  readonly delivery: DeliveryControl;
  readonly #control: OutboxControl;
  readonly #logger: HookLogger;
  /** Targets that take part in blocking events (file, dir, HTTP), in rustus's order. */
  readonly #transports: readonly HookTransport[];
  /** Broker targets: every event reaches them, but never blocking (a pre-* event once the filters passed). */
  readonly #brokers: readonly HookTransport[];
  /** Where broker deliveries wait until the broker confirmed them; undefined without brokers. */
  readonly #outbox: Outbox | undefined;
  /** Targets whose non-blocking deliveries go through the outbox, with their stable journal names. */
  readonly #outboxNames = new Map<HookTransport, string>();
  readonly #queue: PostQueue;
  readonly #closing = new AbortController();
  readonly #modules: HookModules | undefined;
  readonly #pipeline: Pipeline | undefined;
  /** Numbers each upload's post events (shared by every instance with a shared outbox store). */
  readonly #sequencer: UploadSequencer;
  /** While a numbered event is handed out: the outbox additions it makes (the store settles it after them). */
  #additions: Promise<unknown>[] | undefined;
  readonly #stopListeners = new Set<StopUploadListener>();

  constructor(config: HooksConfig, logger: HookLogger, options: HookEngineOptions = {}) {
    this.config = frozenConfig(config);
    this.#logger = logger;
    this.runs = new RunLog(options.runLogCapacity ?? 1000);
    this.#queue = new PostQueue(this.config.postConcurrency, this.config.postQueueLimit);
    this.#modules = options.modules;
    this.#sequencer = new UploadSequencer(
      options.outboxStore === undefined ? undefined : sequenceSourceOf(options.outboxStore),
      logger,
    );
    // Every delivery in flight listens for the engine closing; hundreds at once is normal, not a leak.
    setMaxListeners(0, this.#closing.signal);

    const executableOptions = {
      timeoutMs: this.config.executableTimeoutMs,
      // Hooks inherit Wharf's environment, as in rustus; the library caller may pass another one.
      baseEnv: options.executableEnv ?? process.env,
      onStdout: (delivery: HookDelivery, stdout: string) => {
        this.#logger.debug({ eventId: delivery.eventId, hook: delivery.hook, stdout }, 'hook stdout');
      },
    };
    const transports: HookTransport[] = [];
    const outboxTargets = new Map<string, HookTransport>();
    // HTTP post hooks go through the outbox when it can keep them (a journal or a shared store).
    const durable = options.outboxStore !== undefined || this.config.outboxDirectory !== undefined;
    if (this.config.hooksFile !== undefined) {
      transports.push(new FileHookTransport(this.config.hooksFile, executableOptions));
    }
    if (this.config.hooksDir !== undefined) {
      transports.push(new DirHookTransport(this.config.hooksDir, executableOptions));
    }
    for (const url of this.config.httpUrls) {
      const transport = new HttpHookTransport(url, {
        timeoutMs: this.config.httpTimeoutMs,
        proxyHeaders: this.config.httpProxyHeaders,
        ...(this.config.httpSecrets !== undefined ? { secrets: this.config.httpSecrets } : {}),
      });
      transports.push(transport);
      if (durable && this.config.httpOutbox === true) outboxTargets.set(`http:${url}`, transport);
    }
    this.#transports = transports;
    const brokers = new Map<string, HookTransport>();
    if (this.config.amqp !== undefined) brokers.set('amqp', new AmqpHookTransport(this.config.amqp));
    if (this.config.kafka !== undefined) brokers.set('kafka', new KafkaHookTransport(this.config.kafka));
    this.#brokers = [...brokers.values()];
    for (const [name, transport] of brokers) outboxTargets.set(name, transport);
    for (const [name, transport] of outboxTargets) this.#outboxNames.set(transport, name);
    const bound = boundModules(options.pipeline);
    if (bound.length > 0) {
      if (options.modules === undefined) {
        throw new HookConfigError(
          `named hooks refer to hook modules (${bound.join(', ')}) but none are loaded`,
        );
      }
      try {
        options.modules.bind(bound);
      } catch (cause) {
        throw new HookConfigError((cause as Error).message, { cause });
      }
    }
    this.#pipeline =
      options.pipeline === undefined || options.pipeline.bindings.length === 0
        ? undefined
        : new Pipeline(options.pipeline, {
            format: this.config.format,
            httpTimeoutMs: this.config.httpTimeoutMs,
            executableTimeoutMs: this.config.executableTimeoutMs,
            httpProxyHeaders: this.config.httpProxyHeaders,
            baseEnv: options.executableEnv ?? process.env,
            ...(this.config.cloudEvents !== undefined ? { cloudEvents: this.config.cloudEvents } : {}),
            httpOutbox: this.config.httpOutbox !== false,
            retrySchedule: this.config.retrySchedule ?? defaultRetrySchedule,
          });
    // Named broker hooks, and named http hooks' post deliveries, go through the outbox: one target per binding.
    for (const [name, transport] of this.#pipeline?.outboxTargets ?? []) outboxTargets.set(name, transport);
    // Always there: targets added at run time go through it (in memory unless targets are configured).
    const outbox = new Outbox(outboxTargets, {
      store:
        outboxTargets.size === 0
          ? undefined
          : (options.outboxStore ??
            (this.config.outboxDirectory === undefined
              ? undefined
              : new FileOutboxStore(this.config.outboxDirectory))),
      limit: this.config.outboxLimit ?? 100_000,
      maxBackoffMs: this.config.outboxMaxBackoffMs ?? 30_000,
      // HTTP receivers follow their schedule (a named hook's own, else the flag's), then dead; brokers are
      // retried until they confirm.
      retryPolicy: (name) => {
        const named = this.#pipeline?.retrySchedules.get(name);
        if (named !== undefined) return { kind: 'schedule', delaysMs: named };
        return name.startsWith('http:')
          ? { kind: 'schedule', delaysMs: this.config.retrySchedule ?? defaultRetrySchedule }
          : { kind: 'backoff', initialMs: 200, maxMs: this.config.outboxMaxBackoffMs ?? 30_000 };
      },
      ...(this.config.disableAfterMs !== undefined ? { disableAfterMs: this.config.disableAfterMs } : {}),
      ...(this.config.deadLetterLimit !== undefined ? { deadLetterLimit: this.config.deadLetterLimit } : {}),
      concurrency: this.config.postConcurrency,
      logger,
      signal: this.#closing.signal,
      deliver: async (transport, delivery, attempt) =>
        (await this.#deliver(transport, delivery, false, attempt)).result,
      onRetry: (transport, entry, attempt) => {
        const { eventId, event, hook, label, uploadId } = entry.delivery;
        this.runs.addPending({
          eventId,
          event,
          hook: label ?? hook,
          target: transport.describe(hook),
          uploadId,
          blocking: false,
          startedAt: Date.now(),
          attempt,
        });
      },
    });
    this.#outbox = outbox;
    this.#control = new OutboxControl(outbox, {
      httpTransport: (url, secrets) =>
        new HttpHookTransport(url, {
          timeoutMs: this.config.httpTimeoutMs,
          proxyHeaders: this.config.httpProxyHeaders,
          secrets,
        }),
      deliverOnce: async (transport, delivery) => (await this.#deliver(transport, delivery, false)).record,
      signal: this.#closing.signal,
    });
    this.delivery = this.#control;
    for (const broker of [...this.#brokers, ...(this.#pipeline?.brokerTransports ?? [])]) {
      // Declarations happen early when the broker is up; when it is down, the first delivery retries them.
      broker.open?.().catch((error: unknown) => {
        this.#logger.warn(
          { target: redactTarget(broker.describe('*')), error: String(error) },
          'hook broker not reachable at startup; events wait for it',
        );
      });
    }
  }

  /**
   * Calls `listener` when a post-receive hook answers tusd 2's `StopUpload` (with its `HTTPResponse`, if
   * any): the upload service stops and terminates the upload. Returns a function that removes the listener.
   */
  onStopUpload(listener: StopUploadListener): () => void {
    this.#stopListeners.add(listener);
    return () => this.#stopListeners.delete(listener);
  }

  /** True when an event of this name would reach at least one target: lets the core skip building it. */
  listens(name: UploadEventName): boolean {
    return (
      this.#transportsListen(name) ||
      this.#modulesListen(name) ||
      (this.#pipeline?.has(name) ?? false) ||
      this.#control.runtimeTargetsFor(name).length > 0
    );
  }

  /** `--hooks` selects the events of file, dir, HTTP and broker targets; modules choose their events themselves. */
  #transportsListen(name: UploadEventName): boolean {
    return this.#transports.length + this.#brokers.length > 0 && this.config.enabledEvents.has(name);
  }

  #modulesListen(name: UploadEventName): boolean {
    return (this.#modules?.hasFilters(name) || this.#modules?.hasActions(name)) ?? false;
  }

  /**
   * The targets an event of this name goes to, in blocking order (`module:…` filters, then `file:…`, `dir:…`,
   * `http:…`), then brokers and `module:…` actions.
   */
  targetsFor(name: UploadEventName): string[] {
    const transports = this.#transportsListen(name)
      ? [...this.#transports, ...this.#brokers].map((transport) => transport.describe(name))
      : [];
    return [
      ...(this.#modules?.filterTargets(name) ?? []),
      ...transports,
      ...(this.#pipeline?.targets(name) ?? []),
      ...(this.#modules?.actionTargets(name) ?? []),
    ];
  }

  /** Broker deliveries not yet confirmed, and those refused because the outbox was full (since start). */
  get outbox(): { readonly pending: number; readonly dropped: number } {
    return { pending: this.#outbox?.pending ?? 0, dropped: this.#outbox?.dropped ?? 0 };
  }

  /** Whether {@link HookEngine.close} was called. */
  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * Runs the blocking hooks of a `pre-*` event in order, stopping at the first failure. Never throws: any
   * failure is a `reject` carrying the status, body and headers the client should receive.
   */
  async runBlocking(event: UploadEvent): Promise<BlockingOutcome> {
    if (!this.listens(event.name)) return { kind: 'continue' };
    if (this.closed) return rejectionFor(event.name, { kind: 'aborted' });
    const eventId = randomUUID();
    this.#logger.debug(
      { eventId, hook: event.name, uploadId: event.upload.id, targets: this.#transports.length },
      'running blocking hooks',
    );

    let merged: MergedAnswer | undefined;
    if (this.#modules?.hasFilters(event.name)) {
      const filtered = await this.#modules.runFilters(
        event,
        eventId,
        (run) => this.#recordModule(event, eventId, true, run),
        undefined,
        this.config.executableTimeoutMs,
      );
      if (filtered.kind === 'reject') {
        const { kind: _kind, broken: _broken, ...rejection } = filtered;
        if (this.#transportsListen(event.name)) {
          const skippedDelivery = this.#delivery(eventId, event, '');
          for (const skipped of this.#transports) {
            this.#record(skipped, skippedDelivery, true, Date.now(), 0, 'skipped', {
              error: skippedAfterFailure,
            });
          }
        }
        return { kind: 'reject', ...rejection };
      }
      // The other hooks see the upload as the filters left it.
      event = { ...event, upload: filtered.upload };
      merged = filtered.answer;
    }
    let brokerDelivery: HookDelivery | undefined;
    if (this.#transportsListen(event.name)) {
      const delivery = this.#delivery(eventId, event, this.#format(event, eventId));
      brokerDelivery = delivery;
      for (const [index, transport] of this.#transports.entries()) {
        const delivered = await this.#deliver(transport, delivery, true);
        const outcome = this.#blockingFailure(event.name, delivered);
        if (outcome === undefined) {
          if (delivered.answer !== undefined) merged = mergeAnswers(merged, delivered.answer);
          continue;
        }
        for (const skipped of this.#transports.slice(index + 1)) {
          this.#record(skipped, delivery, true, Date.now(), 0, 'skipped', { error: skippedAfterFailure });
        }
        return outcome;
      }
    }
    const warnings: string[] = [];
    const bound = this.#pipeline?.bound(event, event.endpoint ?? '') ?? [];
    // Broker hooks bound to a pre-* event never block: they are sent once the whole pipeline let it through.
    const brokerHooks: [BoundHook, HookDelivery][] = [];
    for (const [index, hook] of bound.entries()) {
      if (hook.outboxTarget !== undefined) {
        brokerHooks.push([hook, this.#pipelineDelivery(eventId, event, hook)]);
        continue;
      }
      let outcome: BlockingOutcome | undefined;
      let answer: MergedAnswer | undefined;
      let decided = false;
      if (hook.hook.transport === 'module' && this.#modules !== undefined) {
        const filtered = await this.#modules.runFilters(
          event,
          eventId,
          (run) => this.#recordModule(event, eventId, true, run),
          { module: hook.hook.module ?? '', args: hook.args },
          hook.hook.timeoutMs ?? this.config.executableTimeoutMs,
        );
        if (filtered.kind === 'reject') {
          const { kind: _kind, broken, ...rejection } = filtered;
          outcome = { kind: 'reject', ...rejection };
          // A module's HookError or reject answer is its decision, like a hook answering `reject`.
          decided = broken !== true;
        } else {
          event = { ...event, upload: filtered.upload };
          answer = filtered.answer;
        }
      } else {
        const delivery = this.#pipelineDelivery(eventId, event, hook);
        const delivered = await this.#deliverWithRetries(hook, delivery, true);
        outcome = this.#blockingFailure(hook.hook.name, delivered);
        answer = delivered.answer;
        decided = delivered.answer?.reject === true;
      }
      if (outcome === undefined) {
        if (answer !== undefined) {
          merged = mergeAnswers(merged, { reject: false, ...answer });
          // Later hooks of the pipeline see the id and metadata an earlier one chose.
          const change = answer.changeUpload;
          if (change?.id !== undefined || change?.metadata !== undefined) {
            event = {
              ...event,
              upload: {
                ...event.upload,
                ...(change.id !== undefined ? { id: change.id } : {}),
                ...(change.metadata !== undefined ? { metadata: { ...change.metadata } } : {}),
              },
            };
          }
        }
        continue;
      }
      // A hook answering `reject` decided; only failures of non-critical hooks become warnings.
      if (!hook.critical && !decided) {
        warnings.push(hook.hook.name);
        continue;
      }
      for (const skipped of [...brokerHooks.map(([deferred]) => deferred), ...bound.slice(index + 1)]) {
        this.#record(
          skipped.transport,
          this.#pipelineDelivery(eventId, event, skipped),
          true,
          Date.now(),
          0,
          'skipped',
          {
            error: skippedAfterFailure,
          },
        );
      }
      return outcome;
    }
    // Brokers hear of a pre-* event once the filters let it through, and never hold it up (as in rustus,
    // where a rejected pre-create never reaches AMQP or Kafka).
    if (brokerDelivery !== undefined) this.#enqueue(this.#brokers, brokerDelivery);
    for (const [hook, delivery] of brokerHooks) this.#toOutbox(hook, delivery);
    if (warnings.length > 0) {
      this.#logger.warn(
        { eventId, hook: event.name, uploadId: event.upload.id, failed: warnings },
        'operation completed with warnings',
      );
    }
    return {
      kind: 'continue',
      ...(merged !== undefined ? { answer: merged } : {}),
      ...(warnings.length > 0 ? { warnings } : {}),
    };
  }

  /** What a failed blocking delivery means for the client; undefined when the hook let the operation go on. */
  #blockingFailure(hook: string, delivered: BlockingDelivery): BlockingOutcome | undefined {
    const { result, answer, invalidAnswer } = delivered;
    if (result.kind !== 'delivered') return rejectionFor(hook, result);
    if (invalidAnswer !== undefined)
      return reject(502, `Hook "${hook}" answered an invalid response: ${invalidAnswer}`);
    if (answer?.reject) return rejectionByAnswer(hook, answer);
    return undefined;
  }

  /** A named hook's delivery: its payload with the `hook` section, its env, its name in run records. */
  #pipelineDelivery(eventId: string, event: UploadEvent, hook: BoundHook): HookDelivery {
    const base = this.#delivery(
      eventId,
      event,
      this.#pipeline?.payloadFor(hook, event, event.endpoint ?? '', eventId) ?? '',
    );
    return {
      ...base,
      label: hook.hook.name,
      env: { ...base.env, WHARF_HOOK_NAME: hook.hook.name, WHARF_HOOK_ARGS: JSON.stringify(hook.args) },
    };
  }

  /** Delivers, trying again (up to the hook's `retries`) when it could not be run or reached or timed out. */
  async #deliverWithRetries(
    hook: BoundHook,
    delivery: HookDelivery,
    blocking: boolean,
  ): Promise<BlockingDelivery> {
    for (let attempt = 0; ; attempt++) {
      const delivered = await this.#deliver(hook.transport, delivery, blocking);
      const kind = delivered.result.kind;
      const retriable = kind === 'unreachable' || kind === 'spawn_failed' || kind === 'timed_out';
      if (!retriable || attempt >= hook.hook.retries || this.closed) return delivered;
    }
  }

  /** Queues the post hooks of the pipeline whose `runOn` fits the operation's outcome. */
  #queuePipeline(event: UploadEvent, eventId: string): void {
    const failed = event.error !== undefined;
    for (const hook of this.#pipeline?.bound(event, event.endpoint ?? '') ?? []) {
      if (!runsFor(hook.hook.runOn, failed)) continue;
      if (hook.outboxTarget !== undefined) {
        this.#toOutbox(hook, this.#pipelineDelivery(eventId, event, hook));
        continue;
      }
      if (hook.hook.transport === 'module') {
        this.#queueActions(event, eventId, { module: hook.hook.module ?? '', args: hook.args });
        continue;
      }
      const delivery = this.#pipelineDelivery(eventId, event, hook);
      const skip = (error: string): void => {
        this.#record(hook.transport, delivery, false, Date.now(), 0, 'skipped', { error });
      };
      if (this.closed) {
        skip('the hooks engine closed');
        continue;
      }
      this.#pendingRun(delivery, hook.transport.describe(delivery.hook));
      const queued = this.#queue.push(async () => {
        if (this.closed) return skip('the hooks engine closed');
        await this.#deliverWithRetries(hook, delivery, false);
      });
      if (!queued) skip('queue full');
    }
  }

  /**
   * Journals a named hook's delivery in the outbox, which sends it per its target's policy (brokers until they
   * confirm, http hooks per their retry schedule).
   */
  #toOutbox(hook: BoundHook, delivery: HookDelivery): void {
    const skip = (error: string): void => {
      this.#record(hook.transport, delivery, false, Date.now(), 0, 'skipped', { error });
    };
    if (this.#outbox === undefined || hook.outboxTarget === undefined || this.closed) {
      skip('the hooks engine closed');
      return;
    }
    this.#pendingRun(delivery, hook.transport.describe(delivery.hook));
    this.#collect(
      this.#outbox.add(hook.outboxTarget, delivery).then((added) => {
        if (!added) skip('outbox full');
      }),
    );
  }

  /**
   * Queues a non-blocking event for every target; returns at once. Each target is delivered to on its own,
   * so one failing target does not hide the event from the others.
   */
  emit(event: UploadEvent): void {
    if (!this.listens(event.name)) return;
    // A closed engine sends nothing (each target records the event skipped): no number to ask the store for.
    if (this.closed) {
      this.#emitNumbered(event);
      return;
    }
    // Numbered first (a shared store answers within a round trip), then sent as before.
    this.#sequencer.number(event.upload.id, (sequence) => {
      this.#additions = [];
      try {
        this.#emitNumbered(sequence === undefined ? event : { ...event, sequence });
        return Promise.allSettled(this.#additions);
      } finally {
        this.#additions = undefined;
      }
    });
  }

  /**
   * Resolves once the post events emitted so far for the upload hold their place in its order (numbered; with
   * a shared store, by every instance's count). The upload's request waits for it before letting go of the
   * upload, so an event the next request causes, on any instance, is numbered after them.
   */
  numbered(uploadId: string): Promise<void> {
    return this.#sequencer.numbered(uploadId);
  }

  /** Keeps an outbox addition of the event being handed out, so its number is settled after it. */
  #collect(addition: Promise<unknown>): void {
    this.#additions?.push(addition);
  }

  #emitNumbered(event: UploadEvent): void {
    const eventId = randomUUID();
    this.#queueActions(event, eventId);
    this.#queuePipeline(event, eventId);
    // The flag-defined and runtime targets hear of successful operations only, as in rustus.
    if (event.error !== undefined) return;
    const runtimeTargets = this.#control.runtimeTargetsFor(event.name);
    if (!this.#transportsListen(event.name) && runtimeTargets.length === 0) return;
    const delivery = this.#delivery(eventId, event, this.#format(event, eventId));
    for (const target of runtimeTargets) {
      this.#pendingRun(delivery, target);
      if (this.#outbox !== undefined) this.#collect(this.#outbox.add(target, delivery));
    }
    if (!this.#transportsListen(event.name)) return;
    this.#logger.debug(
      { eventId, hook: event.name, uploadId: event.upload.id, targets: this.#transports.length },
      'queueing hook event',
    );

    this.#enqueue([...this.#transports, ...this.#brokers], delivery);
  }

  #enqueue(transports: readonly HookTransport[], delivery: HookDelivery): void {
    const { eventId } = delivery;
    for (const transport of transports) {
      const outboxName = this.#outboxNames.get(transport);
      if (outboxName !== undefined && this.#outbox !== undefined && !this.closed) {
        // Stored first, then delivered (and retried) by the outbox; refused only when the outbox is full.
        this.#pendingRun(delivery, transport.describe(delivery.hook));
        this.#collect(
          this.#outbox.add(outboxName, delivery).then((added) => {
            if (!added)
              this.#record(transport, delivery, false, Date.now(), 0, 'skipped', { error: 'outbox full' });
          }),
        );
        continue;
      }
      if (this.closed) {
        this.#record(transport, delivery, false, Date.now(), 0, 'skipped', {
          error: 'the hooks engine closed',
        });
        continue;
      }
      this.#pendingRun(delivery, transport.describe(delivery.hook));
      const queued = this.#queue.push(async () => {
        if (this.closed) {
          this.#record(transport, delivery, false, Date.now(), 0, 'skipped', {
            error: 'the hooks engine closed',
          });
          return;
        }
        await this.#deliver(transport, delivery, false);
      });
      if (!queued) {
        const record = this.#record(transport, delivery, false, Date.now(), 0, 'skipped', {
          error: 'queue full',
        });
        this.#logger.warn(
          {
            eventId,
            hook: delivery.hook,
            target: redactTarget(record.target),
            uploadId: delivery.uploadId,
            queueLimit: this.config.postQueueLimit,
          },
          'hook queue full; event dropped for this target',
        );
      }
    }
  }

  /** Waits until every queued non-blocking delivery has finished, or `timeoutMs` has passed. */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    const idle = this.#sequencer
      .idle()
      .then(() => Promise.all([this.#queue.idle(), this.#outbox?.idle()]))
      .then(() => false);
    const gaveUp = await Promise.race([idle, timedOut]);
    clearTimeout(timer);
    if (gaveUp) {
      this.#logger.warn(
        {
          running: this.#queue.running,
          waiting: this.#queue.waiting,
          outboxPending: this.#outbox?.pending ?? 0,
          timeoutMs,
        },
        'hook deliveries still pending after drain timeout',
      );
    }
  }

  /**
   * Stops the engine: running hooks are aborted (executables killed, requests cancelled), queued deliveries
   * are recorded as skipped, later events fire nothing and blocking ones are rejected with 503. Call
   * {@link HookEngine.drain} first to let pending deliveries finish.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    await this.#queue.idle();
    await this.#outbox?.close();
    await Promise.all(
      [...this.#transports, ...this.#brokers, ...(this.#pipeline?.brokerTransports ?? [])].map((transport) =>
        transport.close?.(),
      ),
    );
  }

  /** Queues the modules' actions of a post event; each is recorded like a target. */
  #queueActions(event: UploadEvent, eventId: string, only?: BoundRun): void {
    for (const job of this.#modules?.actionJobs(event, eventId, only) ?? []) {
      const skip = (error: string): void => {
        this.#recordModule(event, eventId, false, {
          target: job.target,
          status: 'skipped',
          durationMs: 0,
          error,
        });
      };
      if (this.closed) {
        skip('the hooks engine closed');
        continue;
      }
      this.runs.addPending({
        eventId,
        event: event.name,
        hook: event.name,
        target: job.target,
        uploadId: event.upload.id,
        blocking: false,
        startedAt: Date.now(),
      });
      const queued = this.#queue.push(async () => {
        if (this.closed) return skip('the hooks engine closed');
        const run = await job.run();
        this.#recordModule(event, eventId, false, run);
        if (run.stopUpload !== undefined) {
          for (const listener of this.#stopListeners) listener(event.upload.id, run.stopUpload.response);
        }
      });
      if (!queued) {
        skip('queue full');
        this.#logger.warn(
          { eventId, hook: event.name, target: job.target },
          'hook queue full; event dropped for this target',
        );
      }
    }
  }

  /** A post delivery about to be queued shows as `pending` until its final record (run or skipped). */
  #pendingRun(delivery: HookDelivery, target: string): void {
    this.runs.addPending({
      eventId: delivery.eventId,
      event: delivery.event,
      hook: delivery.label ?? delivery.hook,
      target,
      uploadId: delivery.uploadId,
      blocking: false,
      startedAt: Date.now(),
    });
  }

  #recordModule(event: UploadEvent, eventId: string, blocking: boolean, run: ModuleRun): void {
    this.runs.add({
      eventId,
      event: event.name,
      hook: event.name,
      target: run.target,
      uploadId: event.upload.id,
      blocking,
      status: run.status,
      startedAt: Date.now(),
      durationMs: run.durationMs,
      ...(run.error !== undefined ? { error: run.error } : {}),
    });
  }

  /** The event in `--hooks-format`, built once for every flag-defined target. */
  #format(event: UploadEvent, eventId: string): FormattedEvent {
    return formatEvent(this.config.format, event, {
      eventId,
      ...(this.config.cloudEvents !== undefined ? { cloudEvents: this.config.cloudEvents } : {}),
    });
  }

  #delivery(eventId: string, event: UploadEvent, formatted: FormattedEvent | string): HookDelivery {
    const { payload, cloudEvent }: FormattedEvent =
      typeof formatted === 'string' ? { payload: formatted } : formatted;
    return {
      eventId,
      event: event.name,
      hook: event.name,
      uploadId: event.upload.id,
      ...(event.sequence !== undefined ? { sequence: event.sequence } : {}),
      payload,
      request: event.request,
      signal: this.#closing.signal,
      env: {
        WHARF_UPLOAD_OFFSET: String(event.upload.offset),
        WHARF_UPLOAD_LENGTH: event.upload.length === null ? '' : String(event.upload.length),
        WHARF_ENDPOINT: event.endpoint ?? '',
        // tusd 2's file hooks read these; tusd has no id yet in pre-create.
        TUS_ID: event.name === 'pre-create' ? '' : event.upload.id,
        TUS_SIZE: String(event.upload.length ?? 0),
        TUS_OFFSET: String(event.upload.offset),
        ...cloudEventEnvironment(cloudEvent),
      },
      ...(cloudEvent !== undefined ? { cloudEvent } : {}),
    };
  }

  async #deliver(
    transport: HookTransport,
    delivery: HookDelivery,
    blocking: boolean,
    attempt?: number,
  ): Promise<BlockingDelivery> {
    const startedAt = Date.now();
    this.runs.markRunning({
      eventId: delivery.eventId,
      event: delivery.event,
      hook: delivery.label ?? delivery.hook,
      target: transport.describe(delivery.hook),
      uploadId: delivery.uploadId,
      blocking,
      startedAt,
      ...(attempt !== undefined ? { attempt } : {}),
    });
    const started = performance.now();
    let result: DeliveryResult;
    try {
      result = await transport.deliver(delivery);
    } catch (error) {
      // Transports resolve with a typed result; this guards against a bug turning into a stuck request.
      result = { kind: 'spawn_failed', detail: `unexpected transport error: ${String(error)}` };
    }
    const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
    // Blocking hooks decide by their answer. A post hook's answer decides nothing, except tusd 2's StopUpload
    // on post-receive; anything else it asks for is reported as not honoured, never dropped silently.
    let answer: HookAnswer | undefined;
    let invalidAnswer: string | undefined;
    let notHonoured: readonly string[] | undefined;
    if (result.kind === 'delivered' && delivery.event !== 'ping') {
      try {
        answer = parseHookAnswer(result.answer, delivery.event);
      } catch (cause) {
        if (!(cause instanceof HookAnswerError)) throw cause;
        if (blocking) invalidAnswer = cause.message;
        else notHonoured = [`invalid answer: ${cause.message}`];
      }
      notHonoured = answer?.notHonoured ?? notHonoured;
      if (!blocking && answer?.stopUpload === true) {
        for (const listener of this.#stopListeners) listener(delivery.uploadId, answer.httpResponse);
      }
      if (!blocking) answer = undefined;
    }
    // tusd 1's -hooks-stop-code: an executable's exit code asks to stop the upload.
    const stopCode = this.config.stopCode ?? 0;
    if (
      !blocking &&
      stopCode !== 0 &&
      delivery.event === 'post-receive' &&
      result.kind === 'exited' &&
      result.exitCode === stopCode
    ) {
      for (const listener of this.#stopListeners) listener(delivery.uploadId, undefined);
    }
    const extra: RunExtra = attempt !== undefined ? { attempt } : {};
    const output =
      result.kind === 'delivered'
        ? result.answer
        : result.kind === 'exited'
          ? result.stderr
          : result.kind === 'responded'
            ? result.body
            : undefined;
    if (output !== undefined && output.trim() !== '') extra.output = excerpt(output);
    const error =
      invalidAnswer !== undefined
        ? `invalid answer: ${invalidAnswer}`
        : answer?.reject
          ? 'rejected by its answer'
          : errorOf(result);
    if (error !== undefined) extra.error = error;
    const exitCode = result.kind === 'delivered' || result.kind === 'exited' ? result.exitCode : undefined;
    if (exitCode !== undefined && exitCode !== null) extra.exitCode = exitCode;
    const httpStatus =
      result.kind === 'delivered' || result.kind === 'responded' ? result.httpStatus : undefined;
    if (httpStatus !== undefined) extra.httpStatus = httpStatus;

    const status = error !== undefined && result.kind === 'delivered' ? 'failed' : runStatusOf(result);
    if (notHonoured !== undefined && error === undefined) {
      extra.error = `answer not honoured: ${notHonoured.join('; ')}`;
      this.#logger.warn(
        {
          eventId: delivery.eventId,
          hook: delivery.label ?? delivery.hook,
          target: redactTarget(transport.describe(delivery.hook)),
          uploadId: delivery.uploadId,
          notHonoured,
        },
        'hook answer not honoured in part',
      );
    }
    const record = this.#record(transport, delivery, blocking, startedAt, durationMs, status, extra);
    this.#log(record, result);
    return {
      result,
      record,
      ...(answer !== undefined ? { answer } : {}),
      ...(invalidAnswer !== undefined ? { invalidAnswer } : {}),
    };
  }

  #record(
    transport: HookTransport,
    delivery: HookDelivery,
    blocking: boolean,
    startedAt: number,
    durationMs: number,
    status: RunStatus,
    extra: RunExtra,
  ): RunRecord {
    const record: RunRecord = {
      eventId: delivery.eventId,
      event: delivery.event,
      hook: delivery.label ?? delivery.hook,
      target: transport.describe(delivery.hook),
      uploadId: delivery.uploadId,
      blocking,
      status,
      startedAt,
      durationMs,
      ...extra,
    };
    this.runs.add(record);
    return record;
  }

  /** Logs one run. Never logs the payload or request headers (they may carry credentials). */
  #log(record: RunRecord, result: DeliveryResult): void {
    // Targets by their label: no URL path, query or password, no executable path (target-guard.ts).
    const fields: Record<string, unknown> = { ...record, target: redactTarget(record.target) };
    // An executable that cannot run is reported with its path; the label stands for it (target-guard.ts).
    if (record.error !== undefined) fields.error = redactTargetText(record.error, record.target);
    if (record.output !== undefined) fields.output = redactTargetText(record.output, record.target);
    if (result.kind === 'delivered' && record.status === 'completed') {
      this.#logger.debug(fields, 'hook run completed');
      return;
    }
    if (result.kind === 'delivered') {
      this.#logger.info(fields, 'blocking hook refused the operation by its answer');
      return;
    }
    if (result.kind === 'exited') {
      // The client gets a fixed message, never stderr (paths, commands, credentials): the reason is logged here.
      fields.stderr = redactTargetText(excerpt(result.stderr, stderrLogLimit), record.target);
      this.#logger.warn(fields, record.blocking ? 'blocking hook rejected the operation' : 'hook run failed');
      return;
    }
    if (result.kind === 'responded' && result.body !== '') fields.responseBody = excerpt(result.body);
    if (record.blocking && result.kind === 'responded')
      this.#logger.info(fields, 'blocking hook rejected the operation');
    else if (record.blocking) this.#logger.error(fields, 'blocking hook failed; the operation is cancelled');
    else if (result.kind === 'not_runnable' || result.kind === 'spawn_failed') {
      this.#logger.error(fields, 'hook could not be run');
    } else if (result.kind !== 'aborted') this.#logger.warn(fields, 'hook run failed');
  }
}
