import { setMaxListeners } from 'node:events';
import {
  boundModules,
  endpointsWithoutGlobalHooks,
  Pipeline,
  type PipelineConfig,
} from './chain/pipeline.ts';
import { Outbox } from './delivery/outbox.ts';
import { OutboxControl } from './delivery/outbox-control.ts';
import { FileOutboxStore } from './delivery/outbox-file-store.ts';
import type { OutboxStore } from './delivery/outbox-store.ts';
import { defaultRetrySchedule } from './delivery/retry-policy.ts';
import { HookEngine, type HookEngineOptions } from './engine.ts';
import { frozenConfig, type HooksConfig } from './engine-config.ts';
import { HookConfigError } from './errors.ts';
import type { HookLogger } from './hook-logger.ts';
import type { HookModules } from './modules/registry.ts';
import { RunnerLink } from './runner-link.ts';
import { AmqpHookTransport } from './transports/amqp.ts';
import { DirHookTransport, FileHookTransport } from './transports/file.ts';
import { HttpHookTransport } from './transports/http.ts';
import { KafkaHookTransport } from './transports/kafka.ts';
import type { HookDelivery, HookTransport } from './transports/types.ts';

/*
 * Builds the hook engine's collaborators from the frozen hooks configuration: the flag-defined transports
 * (file, dir, HTTP, AMQP, Kafka), the named hooks' pipeline, the outbox with its store and the admin's delivery
 * control. The composition root (src/compose.ts) calls it and hands the parts to the engine, whose constructor
 * builds nothing from the configuration.
 */

export interface HookPartsOptions {
  /** The environment hook executables inherit before Wharf's additions (default: Wharf's own). */
  readonly executableEnv?: NodeJS.ProcessEnv;
  /** Loaded hook modules: named hooks may bind their handlers. */
  readonly modules?: HookModules;
  /** Named hooks and their bindings (the config file). */
  readonly pipeline?: PipelineConfig;
  /**
   * Where the outbox keeps undelivered events: a shared store (Redis, PostgreSQL) lets another instance deliver
   * the events of one that died. Default: the journal file in `outboxDirectory`.
   */
  readonly outboxStore?: OutboxStore;
  /** Run records kept in memory (default 1000). */
  readonly runLogCapacity?: number;
}

/** Builds every collaborator of the engine from the configuration (validated and frozen here). */
export function composeHookParts(
  config: HooksConfig,
  logger: HookLogger,
  options: HookPartsOptions = {},
): HookEngineOptions {
  const frozen = frozenConfig(config);
  // Aborted when the engine closes; every delivery in flight listens for it: hundreds at once is not a leak.
  const closing = new AbortController();
  setMaxListeners(0, closing.signal);
  const link = new RunnerLink();
  const baseEnv = options.executableEnv ?? process.env;
  const executableOptions = {
    timeoutMs: frozen.executableTimeoutMs,
    // Hooks inherit Wharf's environment, as in rustus; the library caller may pass another one.
    baseEnv,
    onStdout: (delivery: HookDelivery, stdout: string) => {
      logger.debug({ eventId: delivery.eventId, hook: delivery.hook, stdout }, 'hook stdout');
    },
  };
  const transports: HookTransport[] = [];
  const outboxTargets = new Map<string, HookTransport>();
  // HTTP post hooks go through the outbox when it can keep them (a journal or a shared store).
  const durable = options.outboxStore !== undefined || frozen.outboxDirectory !== undefined;
  if (frozen.hooksFile !== undefined) {
    transports.push(new FileHookTransport(frozen.hooksFile, executableOptions));
  }
  if (frozen.hooksDir !== undefined)
    transports.push(new DirHookTransport(frozen.hooksDir, executableOptions));
  for (const url of frozen.httpUrls) {
    const transport = new HttpHookTransport(url, {
      timeoutMs: frozen.httpTimeoutMs,
      proxyHeaders: frozen.httpProxyHeaders,
      ...(frozen.httpSecrets !== undefined ? { secrets: frozen.httpSecrets } : {}),
    });
    transports.push(transport);
    if (durable && frozen.httpOutbox === true) outboxTargets.set(`http:${url}`, transport);
  }
  const brokers = new Map<string, HookTransport>();
  if (frozen.amqp !== undefined) brokers.set('amqp', new AmqpHookTransport(frozen.amqp));
  if (frozen.kafka !== undefined) brokers.set('kafka', new KafkaHookTransport(frozen.kafka));
  for (const [name, transport] of brokers) outboxTargets.set(name, transport);
  const outboxNames = new Map<HookTransport, string>();
  for (const [name, transport] of outboxTargets) outboxNames.set(transport, name);
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
  const pipelineDefaults = {
    format: frozen.format,
    httpTimeoutMs: frozen.httpTimeoutMs,
    executableTimeoutMs: frozen.executableTimeoutMs,
    httpProxyHeaders: frozen.httpProxyHeaders,
    baseEnv,
    ...(frozen.cloudEvents !== undefined ? { cloudEvents: frozen.cloudEvents } : {}),
    httpOutbox: frozen.httpOutbox !== false,
    retrySchedule: frozen.retrySchedule ?? defaultRetrySchedule,
  };
  // What each named outbox target was registered for: a later set reuses the name only for the same hook.
  const registeredTargets = new Map<string, string>();
  const revisions = new Map<string, string[]>();
  const namedSchedules = new Map<string, readonly number[]>();
  const pipeline =
    options.pipeline === undefined || options.pipeline.bindings.length === 0
      ? undefined
      : new Pipeline(options.pipeline, pipelineDefaults);
  // Named broker hooks, and named http hooks' post deliveries, go through the outbox: one target per binding.
  for (const [name, transport] of pipeline?.outboxTargets ?? []) outboxTargets.set(name, transport);
  for (const [name, schedule] of pipeline?.retrySchedules ?? []) namedSchedules.set(name, schedule);
  for (const [name, content] of pipeline?.targetContents ?? []) registeredTargets.set(name, content);
  // Always there: targets added at run time go through it (in memory unless targets are configured).
  const store =
    outboxTargets.size === 0
      ? undefined
      : (options.outboxStore ??
        (frozen.outboxDirectory === undefined
          ? undefined
          : new FileOutboxStore(frozen.outboxDirectory, logger)));
  const outbox = new Outbox(outboxTargets, {
    store,
    limit: frozen.outboxLimit ?? 100_000,
    maxBackoffMs: frozen.outboxMaxBackoffMs ?? 30_000,
    // HTTP receivers follow their schedule (a named hook's own, else the flag's), then dead; brokers are
    // retried until they confirm.
    retryPolicy: (name) => {
      const named = namedSchedules.get(name);
      if (named !== undefined) return { kind: 'schedule', delaysMs: named };
      return name.startsWith('http:')
        ? { kind: 'schedule', delaysMs: frozen.retrySchedule ?? defaultRetrySchedule }
        : { kind: 'backoff', initialMs: 200, maxMs: frozen.outboxMaxBackoffMs ?? 30_000 };
    },
    ...(frozen.disableAfterMs !== undefined ? { disableAfterMs: frozen.disableAfterMs } : {}),
    ...(frozen.deadLetterLimit !== undefined ? { deadLetterLimit: frozen.deadLetterLimit } : {}),
    concurrency: frozen.postConcurrency,
    logger,
    signal: closing.signal,
    deliver: (transport, delivery, attempt) => link.deliver(transport, delivery, attempt),
    onRetry: (transport, entry, attempt) => link.retrying(transport, entry.delivery, attempt),
  });
  const delivery = new OutboxControl(outbox, {
    httpTransport: (url, secrets) =>
      new HttpHookTransport(url, {
        timeoutMs: frozen.httpTimeoutMs,
        proxyHeaders: frozen.httpProxyHeaders,
        secrets,
      }),
    deliverOnce: (transport, delivery) => link.deliverOnce(transport, delivery),
    signal: closing.signal,
    // A target added through the admin API is an entry of the post chains from the next event on.
    onTargetsChanged: () => link.targetsChanged(),
  });
  const startModules = new Set(bound);
  /** Which modules named hooks bind is fixed at start (the modules were bound to them then). */
  const checkModules = (config: PipelineConfig): void => {
    const modules = boundModules(config);
    if (modules.length !== startModules.size || modules.some((name) => !startModules.has(name))) {
      throw new HookConfigError(
        `the module hooks (transport: module) cannot change without a restart: running with ${[...startModules].join(', ') || 'none'}, the new set has ${modules.join(', ') || 'none'}`,
      );
    }
  };
  // The transports of the set in force, by hook name: a replacement reuses those of the hooks that did not change.
  let inForce = pipeline?.transportsByHook;
  const reuseFrom =
    (running: typeof inForce) =>
    (name: string, key: string): HookTransport | undefined => {
      const known = running?.get(name);
      return known?.key === key ? known.transport : undefined;
    };
  /**
   * Throws what {@link buildPipeline} would throw for this set, changing nothing: every hook's transport is
   * built (bound or not, so that a hook is refused when it is declared), nothing is registered, and the
   * transports made for the check are closed (none has connected: closing only marks them so).
   */
  const checkPipeline = (config: PipelineConfig): void => {
    checkModules(config);
    const running = inForce;
    const checked = new Pipeline(config, { ...pipelineDefaults, reuse: reuseFrom(running) });
    for (const [name, { transport }] of checked.transportsByHook) {
      if (running?.get(name)?.transport !== transport) transport.close?.().catch(() => undefined);
    }
  };
  /**
   * Builds the pipeline of a set of named hooks that replaces the running one (a reloaded --config, the admin
   * API) and registers its outbox targets. A binding whose hook and binding are unchanged keeps its target (its
   * health, dead letters and pending events); a changed one gets a target of its own, so that events stored for
   * the old declaration are still delivered as it said. A hook whose transport key did not change keeps its
   * transport (and its connections).
   */
  const buildPipeline = (config: PipelineConfig): Pipeline | undefined => {
    checkModules(config);
    if (config.bindings.length === 0) {
      inForce = undefined;
      return undefined;
    }
    const built = new Pipeline(config, {
      ...pipelineDefaults,
      reuse: reuseFrom(inForce),
      targetName: (base, content) => {
        const known = registeredTargets.get(base);
        if (known === undefined || known === content) return base;
        // A changed declaration: `<base>.<n>`, the same n for the same content (secrets included, never shown).
        const seen = revisions.get(base) ?? [];
        let revision = seen.indexOf(content);
        if (revision === -1) revision = seen.push(content) - 1;
        revisions.set(base, seen);
        return `${base}.${revision + 1}`;
      },
    });
    for (const [name, schedule] of built.retrySchedules) namedSchedules.set(name, schedule);
    for (const [name, content] of built.targetContents) {
      if (!registeredTargets.has(name)) registeredTargets.set(name, content);
    }
    for (const [name, transport] of built.outboxTargets) outbox.addTarget(name, transport);
    inForce = built.transportsByHook;
    return built;
  };
  return {
    transports,
    buildPipeline,
    checkPipeline,
    brokers: [...brokers.values()],
    outboxNames,
    ...(pipeline !== undefined ? { pipeline } : {}),
    withoutGlobalHooks: endpointsWithoutGlobalHooks(options.pipeline),
    ...(options.modules !== undefined ? { modules: options.modules } : {}),
    ...(options.outboxStore !== undefined ? { sequenceStore: options.outboxStore } : {}),
    ...(options.runLogCapacity !== undefined ? { runLogCapacity: options.runLogCapacity } : {}),
    outbox,
    delivery,
    link,
    closing,
  };
}

/**
 * The engine with every default collaborator, built from the configuration: the convenience for library users
 * and tests (the server's composition root calls {@link composeHookParts} itself).
 */
export function createHookEngine(
  config: HooksConfig,
  logger: HookLogger,
  options: HookPartsOptions = {},
): HookEngine {
  return new HookEngine(config, logger, composeHookParts(config, logger, options));
}
