import { ChainCompiler } from './chain/compile.ts';
import type { CompiledChain } from './chain/entries.ts';
import { endpointsWithoutGlobalHooks, type Pipeline, type PipelineConfig } from './chain/pipeline.ts';
import { PostQueue } from './chain/post-queue.ts';
import { type BlockingOutcome, rejectionFor } from './chain/rejections.ts';
import { type AnswerStatus, ChainRunner, type StopUploadListener } from './chain/runner.ts';
import type { DeliveryControl } from './delivery/delivery-control.ts';
import { UploadSequencer } from './delivery/event-sequence.ts';
import type { Outbox } from './delivery/outbox.ts';
import type { OutboxControl } from './delivery/outbox-control.ts';
import { type OutboxStore, sequenceSourceOf } from './delivery/outbox-store.ts';
import { redactTarget } from './delivery/target-guard.ts';
import { frozenConfig, type HooksConfig } from './engine-config.ts';
import { HookConfigError } from './errors.ts';
import { newEventId } from './event-id.ts';
import type { HookFailure, UploadEvent, UploadEventName } from './events.ts';
import { failureHeardBy } from './failure.ts';
import { formatEvent } from './formats/index.ts';
import { RunLog } from './history/run-log.ts';
import type { HookLogger } from './hook-logger.ts';
import type { HookModules } from './modules/registry.ts';
import type { RunnerLink } from './runner-link.ts';
import type { HookTransport } from './transports/types.ts';

export type { AnswerStatus, StopUploadListener } from './chain/runner.ts';

/**
 * The event with its number: a copy, as `{ ...event, sequence }` would make, with its optional fields set once
 * the object is built (a spread into a literal takes V8's slow path, and every post event is numbered).
 */
function withSequence(event: UploadEvent, sequence: number): UploadEvent {
  const numbered: { -readonly [K in keyof UploadEvent]: UploadEvent[K] } = {
    name: event.name,
    upload: event.upload,
    request: event.request,
  };
  if (event.endpoint !== undefined) numbered.endpoint = event.endpoint;
  if (event.error !== undefined) numbered.error = event.error;
  if (event.failure !== undefined) numbered.failure = event.failure;
  numbered.sequence = sequence;
  return numbered;
}

export type { HookLogger } from './hook-logger.ts';

/**
 * One version of the named hooks and bindings, with its compiled chains. A request runs every event with the
 * set that was current when it started, so a change never reaches a request in flight.
 */
export interface HookSet {
  /** 0 at start; one more at each replacement (a reload of --config, a change through the admin API). */
  readonly version: number;
  readonly pipeline: Pipeline | undefined;
  readonly chains: ChainCompiler;
}

/**
 * The engine's collaborators, built by its composition (compose-hooks.ts `composeHookParts`, called by
 * src/compose.ts): the engine builds nothing from its configuration.
 */
export interface HookEngineOptions {
  /** Targets that take part in blocking events (file, dir, HTTP), in rustus's order. */
  readonly transports: readonly HookTransport[];
  /** Broker targets: every event reaches them, but never blocking (a pre-* event once the filters passed). */
  readonly brokers: readonly HookTransport[];
  /** Targets whose non-blocking deliveries go through the outbox, with their stable journal names. */
  readonly outboxNames: ReadonlyMap<HookTransport, string>;
  /** Named hooks and their bindings (the config file): run after the flag-defined targets, in order. */
  readonly pipeline?: Pipeline;
  /** Loaded hook modules: their filters run before the other blocking hooks, their actions with post hooks. */
  readonly modules?: HookModules;
  /** Endpoints that run only their bound named hooks (`globalHooks: false` in the config file). */
  readonly withoutGlobalHooks?: ReadonlySet<string>;
  /**
   * Builds the pipeline of named hooks that replace the running ones ({@link HookEngine.replaceNamedHooks}) and
   * registers its outbox targets; throws a HookConfigError when the set cannot be used. Absent: the named hooks
   * cannot change while the engine runs.
   */
  readonly buildPipeline?: (config: PipelineConfig) => Pipeline | undefined;
  /**
   * Throws the HookConfigError {@link HookEngineOptions.buildPipeline} would throw for this set, changing
   * nothing ({@link HookEngine.checkNamedHooks}). Absent: only the module hooks are not checked.
   */
  readonly checkPipeline?: (config: PipelineConfig) => void;
  /** A shared outbox store numbers each upload's post events across instances (none: numbered here). */
  readonly sequenceStore?: OutboxStore;
  /** Run records kept in memory (default 1000). */
  readonly runLogCapacity?: number;
  /** Where post deliveries wait until confirmed (always there: run-time targets go through it). */
  readonly outbox: Outbox;
  /** Targets' health, dead letters, resend, ping, runtime targets, over {@link HookEngineOptions.outbox}. */
  readonly delivery: OutboxControl;
  /** How the outbox and the delivery control reach this engine's runner: the engine attaches it. */
  readonly link: RunnerLink;
  /** The outbox and the delivery control stop on its signal; the engine aborts it when it closes. */
  readonly closing: AbortController;
}

/**
 * Delivers upload events to the hooks, rustus-compatible. Every source of hooks (flags, modules, named hooks,
 * targets added at run time) declares entries of one chain per event and endpoint (chain/compile.ts), which one
 * runner runs (chain/runner.ts).
 *
 * Blocking events ({@link HookEngine.runBlocking}) visit the entries in order and stop at the first failure of
 * a critical one, which becomes the client's answer. Non-blocking events ({@link HookEngine.emit}) go to every
 * entry independently, through the outbox or a bounded queue, and never hold up the request. Every run is
 * recorded in {@link HookEngine.runs}.
 *
 * @example
 * const engine = createHookEngine({ ...config, httpUrls: ['http://localhost:8080/hooks'] }, logger); // compose-hooks.ts
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
  readonly #outbox: Outbox;
  /** Targets whose non-blocking deliveries go through the outbox, with their stable journal names. */
  readonly #outboxNames: ReadonlyMap<HookTransport, string>;
  readonly #queue: PostQueue;
  readonly #closing: AbortController;
  /** The hook modules new requests use (replaced by a reload); a request's set keeps those it started with. */
  #modules: HookModules | undefined;
  /** The named hooks new requests use; a request keeps the set that was current when it started. */
  #set: HookSet;
  /**
   * The named hooks' transports not closed yet: those of the current set, and those of replaced sets that the
   * outbox still delivers through (closed with the engine). See {@link HookEngine.replaceNamedHooks}.
   */
  readonly #namedTransports = new Set<HookTransport>();
  /** Replaced transports that keep no connection (`keepConnections(false)`), until one is used again. */
  readonly #retired = new Set<HookTransport>();
  readonly #buildPipeline: ((config: PipelineConfig) => Pipeline | undefined) | undefined;
  readonly #checkPipeline: ((config: PipelineConfig) => void) | undefined;
  readonly #withoutGlobalHooks: ReadonlySet<string>;
  /** The endpoints without global hooks of the current set (a replacement of the modules keeps them). */
  #currentWithout: ReadonlySet<string>;
  /** Numbers each upload's post events (shared by every instance with a shared outbox store). */
  readonly #sequencer: UploadSequencer;
  /** While a numbered event is handed out: the outbox additions it makes (the store settles it after them). */
  #additions: Promise<unknown>[] | undefined;
  /** Runs every chain and writes every run record. */
  readonly #runner: ChainRunner;
  readonly #stopListeners = new Set<StopUploadListener>();

  constructor(config: HooksConfig, logger: HookLogger, options: HookEngineOptions) {
    this.config = frozenConfig(config);
    this.#logger = logger;
    this.runs = new RunLog(options.runLogCapacity ?? 1000);
    this.#queue = new PostQueue(this.config.postConcurrency, this.config.postQueueLimit);
    this.#modules = options.modules;
    this.#sequencer = new UploadSequencer(
      options.sequenceStore === undefined ? undefined : sequenceSourceOf(options.sequenceStore),
      logger,
    );
    this.#closing = options.closing;
    this.#transports = options.transports;
    this.#brokers = options.brokers;
    this.#outboxNames = options.outboxNames;
    this.#buildPipeline = options.buildPipeline;
    this.#checkPipeline = options.checkPipeline;
    this.#withoutGlobalHooks = options.withoutGlobalHooks ?? new Set();
    const outbox = options.outbox;
    this.#outbox = outbox;
    this.#control = options.delivery;
    this.delivery = this.#control;
    this.#runner = new ChainRunner({
      runs: this.runs,
      logger,
      queue: this.#queue,
      postQueueLimit: this.config.postQueueLimit,
      outbox,
      signal: this.#closing.signal,
      formatEvent: (event, eventId) =>
        formatEvent(
          this.config.format,
          event,
          this.config.cloudEvents !== undefined
            ? { eventId, cloudEvents: this.config.cloudEvents }
            : { eventId },
        ),
      payloadFor: (bound, event, eventId) => bound.payloadFor(event, event.endpoint ?? '', eventId),
      collect: (addition) => this.#additions?.push(addition),
      stopUpload: (uploadId, response) => {
        for (const listener of this.#stopListeners) listener(uploadId, response);
      },
      ...(this.config.stopCode !== undefined ? { stopCode: this.config.stopCode } : {}),
    });
    this.#currentWithout = this.#withoutGlobalHooks;
    this.#set = this.#newSet(0, options.pipeline, this.#withoutGlobalHooks);
    // A target added through the admin API joins the chains of new requests.
    options.link.attach(this.#runner, () => this.#chains.invalidate());
    this.#openBrokers([...this.#brokers, ...(options.pipeline?.brokerTransports ?? [])]);
  }

  #newSet(version: number, pipeline: Pipeline | undefined, withoutGlobalHooks: ReadonlySet<string>): HookSet {
    for (const transport of pipeline?.transports ?? []) this.#namedTransports.add(transport);
    const outbox = this.#outbox;
    const chains = new ChainCompiler({
      enabledEvents: this.config.enabledEvents,
      flagTargets: this.#transports,
      flagBrokers: this.#brokers,
      outboxNames: this.#outboxNames,
      ...(this.#modules !== undefined ? { modules: this.#modules } : {}),
      ...(pipeline !== undefined ? { pipeline } : {}),
      filterTimeoutMs: this.config.executableTimeoutMs,
      withoutGlobalHooks,
      runtimeTargets: (event) =>
        this.#control.runtimeTargetsFor(event).flatMap((name) => {
          const transport = outbox.target(name)?.transport;
          return transport === undefined ? [] : [{ name, transport }];
        }),
    });
    return { version, pipeline, chains };
  }

  #openBrokers(brokers: readonly HookTransport[]): void {
    for (const broker of brokers) {
      // Declarations happen early when the broker is up; when it is down, the first delivery retries them.
      broker.open?.().catch((error: unknown) => {
        this.#logger.warn(
          { target: redactTarget(broker.describe('*')), error: String(error) },
          'hook broker not reachable at startup; events wait for it',
        );
      });
    }
  }

  /** The chains of the current set (what an event without a request of its own runs). */
  get #chains(): ChainCompiler {
    return this.#set.chains;
  }

  /** The named hooks a request starting now uses: pass it to {@link runBlocking} and {@link emit}. */
  get hookSet(): HookSet {
    return this.#set;
  }

  /**
   * Replaces the named hooks and bindings (a reloaded `--config`, a change through the admin API): requests
   * that start from now on run the new set; those in flight keep the set they started with. Throws a
   * HookConfigError (the running set stays) when the set cannot be used or the engine cannot change its set.
   */
  replaceNamedHooks(config: PipelineConfig, version = this.#set.version + 1): HookSet {
    if (this.#buildPipeline === undefined) throw cannotChange();
    const pipeline = this.#buildPipeline(config);
    // Only the brokers the outbox will deliver through: an unchanged binding keeps its first transport.
    const outbox = this.#outbox;
    const delivering = new Set(outbox.targetNames().map((name) => outbox.target(name)?.transport));
    this.#openBrokers((pipeline?.brokerTransports ?? []).filter((broker) => delivering.has(broker)));
    this.#currentWithout = endpointsWithoutGlobalHooks(config);
    this.#set = this.#newSet(version, pipeline, this.#currentWithout);
    this.#releaseReplaced(pipeline);
    return this.#set;
  }

  /**
   * Throws the HookConfigError {@link replaceNamedHooks} would throw for this set, and changes nothing: the admin
   * API asks before it stores a change, so that a change the engine cannot run is refused, not stored.
   */
  checkNamedHooks(config: PipelineConfig): void {
    if (this.#buildPipeline === undefined) throw cannotChange();
    this.#checkPipeline?.(config);
  }

  /**
   * Lets go of the connections of replaced named hooks, rather than keep them until the engine closes. A hook
   * whose declaration did not change keeps its transport in the new set (compose-hooks.ts, `transportKey`);
   * the others get new ones. Kept: the new set's transports, and those the outbox delivers the new set's
   * targets through (an unchanged binding keeps the target, and the transport, it was first registered with).
   * A transport with `keepConnections` (http, notify, AMQP, Kafka) is retired: its connections close once no
   * delivery uses them; a request still running the old set, and retries of events stored for an old
   * declaration, deliver on connections that are not kept; and it keeps them again if a later set delivers
   * through it (a declaration changed, then changed back, finds its first outbox target). Any other transport
   * (file, dir, module: no connection) is closed only when no outbox target delivers through it.
   */
  #releaseReplaced(current: Pipeline | undefined): void {
    const outbox = this.#outbox;
    const kept = new Set<HookTransport>(current?.transports ?? []);
    for (const name of current?.outboxTargets.keys() ?? []) {
      const transport = outbox.target(name)?.transport;
      if (transport !== undefined) kept.add(transport);
    }
    for (const transport of this.#retired) {
      if (!kept.has(transport)) continue;
      transport.keepConnections?.(true);
      this.#retired.delete(transport);
      this.#namedTransports.add(transport);
    }
    let delivering: Set<HookTransport | undefined> | undefined;
    for (const transport of [...this.#namedTransports]) {
      if (kept.has(transport)) continue;
      delivering ??= new Set(outbox.targetNames().map((name) => outbox.target(name)?.transport));
      if (transport.keepConnections !== undefined) {
        transport.keepConnections(false);
        this.#namedTransports.delete(transport);
        // Only an outbox target's transport can be delivered through by a later set again.
        if (delivering.has(transport)) this.#retired.add(transport);
        continue;
      }
      if (delivering.has(transport)) continue;
      this.#namedTransports.delete(transport);
      transport.close?.().catch((error: unknown) => {
        this.#logger.warn(
          { target: redactTarget(transport.describe('*')), error: String(error) },
          'a replaced named hook could not be closed',
        );
      });
    }
  }

  /**
   * Replaces the hook modules (reloaded on SIGHUP), keeping the named hooks: requests that start from now on
   * run the new modules' filters and actions; those in flight keep the set, and so the modules, they started
   * with. The caller retires the old modules. `version`: the set's number (a SIGHUP that also reloaded
   * `--config` gives the number that reload gave, so one reload is one version).
   */
  replaceModules(modules: HookModules, version = this.#set.version + 1): HookSet {
    this.#modules = modules;
    this.#set = this.#newSet(version, this.#set.pipeline, this.#currentWithout);
    return this.#set;
  }

  /**
   * Calls `listener` when a post-receive hook answers tusd 2's `StopUpload` (with its `HTTPResponse`, if
   * any): the upload service stops and terminates the upload. Returns a function that removes the listener.
   */
  onStopUpload(listener: StopUploadListener): () => void {
    this.#stopListeners.add(listener);
    return () => this.#stopListeners.delete(listener);
  }

  /** True when an event of this name would reach at least one entry on some endpoint: lets the core skip building it. */
  listens(name: UploadEventName): boolean {
    const set = this.#set;
    return set.chains.chain(name, '') !== null || (set.pipeline?.has(name) ?? false);
  }

  /** `--hooks` selects the events of file, dir, HTTP and broker targets; modules choose their events themselves. */
  #transportsListen(name: UploadEventName): boolean {
    return this.#transports.length + this.#brokers.length > 0 && this.config.enabledEvents.has(name);
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
      ...(this.#set.pipeline?.targets(name) ?? []),
      ...(this.#modules?.actionTargets(name) ?? []),
    ];
  }

  /** Broker deliveries not yet confirmed, and those refused because the outbox was full (since start). */
  get outbox(): { readonly pending: number; readonly dropped: number } {
    return { pending: this.#outbox?.pending ?? 0, dropped: this.#outbox?.dropped ?? 0 };
  }

  /**
   * Loads the broker clients' libraries (see `HookTransport.load`); the server awaits it before it listens.
   * Never rejects: a library that cannot load fails the first delivery, which reports it.
   */
  async loadClients(): Promise<void> {
    const brokers = [...this.#brokers, ...(this.#set.pipeline?.brokerTransports ?? [])];
    await Promise.all(brokers.map((broker) => broker.load?.().catch(() => undefined)));
  }

  /** Whether {@link HookEngine.close} was called. */
  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /**
   * Runs the chain of a `pre-*` event in order, stopping at the first failure of a critical entry. Never throws:
   * any failure is a `reject` carrying the status, body and headers the client should receive.
   */
  async runBlocking(event: UploadEvent, set: HookSet = this.#set): Promise<BlockingOutcome> {
    const chain = this.#chain(event, set);
    if (chain === null) return { kind: 'continue' };
    if (this.closed) return rejectionFor(event.name, { kind: 'aborted' });
    const eventId = newEventId();
    this.#logger.debug(
      { eventId, hook: event.name, uploadId: event.upload.id, entries: chain.length },
      'running blocking hooks',
    );
    return this.#runner.runBlocking(chain, event, eventId);
  }

  /** The compiled chain of this event's name on its endpoint, in the request's set of named hooks. */
  #chain(event: UploadEvent, set: HookSet): CompiledChain {
    return set.chains.chain(event.name, event.endpoint ?? '');
  }

  /**
   * Queues a non-blocking event for every entry of its chain; returns at once. Each entry is delivered to on
   * its own, so one failing target does not hide the event from the others. `answered` gives the status code of
   * the answer the client got (undefined: none was sent), for entries whose `when` tests `status`.
   */
  emit(event: UploadEvent, answered?: AnswerStatus, set: HookSet = this.#set): void {
    const chain = this.#chain(event, set);
    if (chain === null) return;
    // A closed engine sends nothing (each entry records the event skipped): no number to ask the store for.
    if (this.closed) {
      this.#emitNumbered(chain, event, answered);
      return;
    }
    // Without a shared store the number is known at once: nothing to collect or wait for.
    const now = this.#sequencer.numberNow(event.upload.id);
    if (now !== undefined) {
      this.#emitNumbered(chain, withSequence(event, now), answered);
      return;
    }
    // Numbered first (a shared store answers within a round trip), then sent as before.
    this.#sequencer.number(event.upload.id, (sequence) => {
      this.#additions = [];
      try {
        this.#emitNumbered(chain, sequence === undefined ? event : withSequence(event, sequence), answered);
        return Promise.allSettled(this.#additions);
      } finally {
        this.#additions = undefined;
      }
    });
  }

  /**
   * A failed operation (`event.failure` set, `event.name` the stage's own post event): every run-on-failure
   * entry of the post events whose operation it ends hears it, once (see `failureHeardBy`). Numbered like
   * {@link emit}; returns at once.
   */
  emitFailure(
    event: UploadEvent & { readonly failure: HookFailure },
    answered?: AnswerStatus,
    set: HookSet = this.#set,
  ): void {
    const endpoint = event.endpoint ?? '';
    const chains = failureHeardBy[event.failure.stage].map((name) => ({
      name,
      chain: set.chains.chain(name, endpoint),
    }));
    if (chains.every(({ chain }) => chain === null)) return;
    const run = (numbered: UploadEvent): void => {
      const eventId = newEventId();
      this.#logger.debug(
        { eventId, hook: event.name, uploadId: event.upload.id, stage: event.failure.stage },
        'queueing hook failure event',
      );
      this.#runner.runFailure(chains, numbered, eventId, answered);
    };
    if (this.closed) {
      run(event);
      return;
    }
    const now = this.#sequencer.numberNow(event.upload.id);
    if (now !== undefined) {
      run({ ...event, sequence: now });
      return;
    }
    this.#sequencer.number(event.upload.id, (sequence) => {
      this.#additions = [];
      try {
        run(sequence === undefined ? event : { ...event, sequence });
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

  /** `chain`: the event's, in the set of named hooks its request started with (looked up once by emit). */
  #emitNumbered(chain: CompiledChain, event: UploadEvent, answered: AnswerStatus | undefined): void {
    const eventId = newEventId();
    if (this.#logger.isLevelEnabled?.('debug') !== false) {
      this.#logger.debug({ eventId, hook: event.name, uploadId: event.upload.id }, 'queueing hook event');
    }
    this.#runner.runPost(chain, event, eventId, answered);
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
    const outbox = this.#outbox;
    // Each transport once, wherever it is listed: the flags' targets, the named hooks' (current, and replaced
    // ones still delivered through), and the outbox's targets (those added through the admin API are only there).
    const transports = new Set([
      ...this.#transports,
      ...this.#brokers,
      ...this.#namedTransports,
      ...(outbox?.targetNames().map((name) => outbox.target(name)?.transport) ?? []),
    ]);
    // A transport that cannot close cleanly (a broker that never confirms the close: its connection is destroyed
    // after its timeout) is said, and does not stop the others or the shutdown.
    await Promise.all(
      [...transports].map((transport) =>
        transport?.close?.().catch((error: unknown) => {
          this.#logger.warn(
            { target: redactTarget(transport.describe('*')), error: String(error) },
            'a hook transport did not close cleanly',
          );
        }),
      ),
    );
  }
}

function cannotChange(): HookConfigError {
  return new HookConfigError('this hooks engine cannot change its named hooks while it runs');
}
