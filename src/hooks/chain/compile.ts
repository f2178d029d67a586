import { isBlockingEvent, type UploadEventName } from '../events.ts';
import type { HookModules } from '../modules/registry.ts';
import type { HookTransport } from '../transports/types.ts';
import type { ChainEntry, CompiledChain } from './entries.ts';
import { isBrokerTransport, type Pipeline } from './pipeline.ts';

/** Everything that declares hook entries; the compiler turns them into one chain per event and endpoint. */
export interface ChainSources {
  /** `--hooks`: the events the flag-defined targets hear. */
  readonly enabledEvents: ReadonlySet<UploadEventName>;
  /** `--hooks-file`, `--hooks-dir`, `--hooks-http-urls`, in rustus's order. */
  readonly flagTargets: readonly HookTransport[];
  /** `--hooks-amqp-*`, `--hooks-kafka-*`: never blocking. */
  readonly flagBrokers: readonly HookTransport[];
  /** The outbox name of each flag target whose post deliveries are durable. */
  readonly outboxNames: ReadonlyMap<HookTransport, string>;
  readonly modules?: HookModules;
  readonly pipeline?: Pipeline;
  /** `--hooks-executable-timeout`: a module filter's timeout unless its named hook sets one. */
  readonly filterTimeoutMs: number;
  /**
   * Endpoints that opted out of the global hooks (`globalHooks: false`): their chains hold only the named hooks
   * their bindings list, no module filters or actions no named hook binds, flag-defined targets or admin targets.
   */
  readonly withoutGlobalHooks?: ReadonlySet<string>;
  /** Targets added through the admin API (post events only), with their outbox name and transport. */
  runtimeTargets(
    event: UploadEventName,
  ): readonly { readonly name: string; readonly transport: HookTransport }[];
}

/**
 * Compiles and keeps the chains: for each event and endpoint, in this order, modules' filters or actions,
 * flag-defined targets (brokers last), named hooks as their bindings list them, then run-time targets.
 * A chain is compiled the first time its endpoint sends the event and kept until {@link invalidate}
 * (run-time targets changed).
 */
export class ChainCompiler {
  readonly #sources: ChainSources;
  /**
   * By endpoint, then event. Two lookups by strings that keep their hash (the event names are constants, an
   * endpoint's path is the service's), where a key joining them was a new string to hash at every lookup: the
   * upload service and the engine look a chain up several times per event.
   */
  readonly #chains = new Map<string, Map<UploadEventName, CompiledChain>>();

  constructor(sources: ChainSources) {
    this.#sources = sources;
  }

  chain(event: UploadEventName, endpoint: string): CompiledChain {
    let byEvent = this.#chains.get(endpoint);
    if (byEvent === undefined) {
      byEvent = new Map();
      this.#chains.set(endpoint, byEvent);
    }
    let chain = byEvent.get(event);
    if (chain === undefined) {
      const entries = compile(this.#sources, event, endpoint);
      chain = entries.length === 0 ? null : entries;
      byEvent.set(event, chain);
    }
    return chain;
  }

  /** Forgets the compiled chains: the next event compiles its chain again. */
  invalidate(): void {
    this.#chains.clear();
  }
}

/** The entries of one event on one endpoint, in chain order. */
export function compile(sources: ChainSources, event: UploadEventName, endpoint: string): ChainEntry[] {
  const blocking = isBlockingEvent(event);
  const entries: ChainEntry[] = [];
  const { modules, pipeline } = sources;
  const global = sources.withoutGlobalHooks?.has(endpoint) !== true;
  // Modules' filters and actions (those no named hook binds), unless the endpoint runs its bound hooks only.
  if (global && blocking) {
    for (const step of modules?.filterSteps(event) ?? []) {
      entries.push({
        kind: 'filter',
        source: 'module',
        step,
        critical: true,
        runOn: 'success',
        timeoutMs: sources.filterTimeoutMs,
      });
    }
  } else if (global) {
    for (const step of modules?.actionSteps(event) ?? []) {
      entries.push({ kind: 'action', source: 'module', step, critical: false, runOn: step.runOn });
    }
  }
  // Flag-defined targets hear of successful operations only, as in rustus.
  if (global && sources.enabledEvents.has(event)) {
    for (const transport of sources.flagTargets) {
      const outboxName = blocking ? undefined : sources.outboxNames.get(transport);
      entries.push({
        kind: 'target',
        source: 'flag',
        transport,
        critical: blocking,
        runOn: 'success',
        deferred: false,
        retries: 0,
        ...(outboxName !== undefined ? { outboxName } : {}),
      });
    }
    for (const transport of sources.flagBrokers) {
      const outboxName = sources.outboxNames.get(transport);
      entries.push({
        kind: 'target',
        source: 'flag',
        transport,
        critical: false,
        runOn: 'success',
        deferred: true,
        retries: 0,
        ...(outboxName !== undefined ? { outboxName } : {}),
      });
    }
  }
  // Named hooks, as the endpoint's bindings list them.
  for (const bound of pipeline?.boundTo(event, endpoint) ?? []) {
    const { hook, binding } = bound;
    const when = binding.when !== undefined ? { when: binding.when } : {};
    if (hook.transport === 'module') {
      const only = { module: hook.module ?? '', args: bound.args };
      if (blocking) {
        for (const step of modules?.filterSteps(event, only) ?? []) {
          entries.push({
            kind: 'filter',
            source: 'named',
            step,
            critical: bound.critical,
            runOn: hook.runOn,
            timeoutMs: hook.timeoutMs ?? sources.filterTimeoutMs,
            ...when,
          });
        }
      } else {
        // A bound module runs when its named hook's runOn says so; its own runOn is ignored.
        for (const step of modules?.actionSteps(event, only) ?? []) {
          entries.push({
            kind: 'action',
            source: 'named',
            step,
            critical: false,
            runOn: hook.runOn,
            ...when,
          });
        }
      }
      continue;
    }
    entries.push({
      kind: 'target',
      source: 'named',
      transport: bound.transport,
      critical: bound.critical,
      runOn: hook.runOn,
      deferred: isBrokerTransport(hook.transport),
      retries: hook.retries,
      bound,
      ...(bound.outboxTarget !== undefined ? { outboxName: bound.outboxTarget } : {}),
      ...when,
    });
  }
  // Targets added through the admin API: post events only (a pre-* event is refused when one is added).
  if (global && !blocking) {
    for (const { name, transport } of sources.runtimeTargets(event)) {
      entries.push({
        kind: 'target',
        source: 'runtime',
        transport,
        critical: false,
        runOn: 'success',
        deferred: false,
        retries: 0,
        outboxName: name,
      });
    }
  }
  return entries;
}
