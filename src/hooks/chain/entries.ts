import type { UploadEventName } from '../events.ts';
import type { ActionStep, FilterStep } from '../modules/registry.ts';
import type { HookTransport } from '../transports/types.ts';
import type { WhenCondition } from './conditions.ts';
import type { BoundHook, RunOn } from './pipeline.ts';

/** What declared an entry: a `--hooks-*` flag, a loaded hook module, a named hook's binding, the admin API. */
export type EntrySource = 'flag' | 'module' | 'named' | 'runtime';

interface EntryBase {
  readonly source: EntrySource;
  /** On a `pre-*` event, a failure cancels the operation and skips the entries after it. */
  readonly critical: boolean;
  /** On a post event: runs after a successful operation, a failed one, or both. */
  readonly runOn: RunOn;
  /** Checked on every event (a named hook's binding condition); an entry whose condition fails is not run. */
  readonly when?: WhenCondition;
}

/** A module's filter (`pre-*` events): runs in-process and may reject or change the upload. */
export interface FilterEntry extends EntryBase {
  readonly kind: 'filter';
  readonly step: FilterStep;
  readonly timeoutMs: number;
}

/** A module's action (post events): runs in-process on the post queue. */
export interface ActionEntry extends EntryBase {
  readonly kind: 'action';
  readonly step: ActionStep;
}

/** A target reached through a transport: file, dir, HTTP, AMQP, Kafka. */
export interface TargetEntry extends EntryBase {
  readonly kind: 'target';
  readonly transport: HookTransport;
  /** The outbox target its non-blocking deliveries go through; undefined: the in-memory post queue. */
  readonly outboxName?: string;
  /** Brokers never block: on a `pre-*` event they hear of it once the whole chain let it through. */
  readonly deferred: boolean;
  /** Extra immediate attempts of a blocking run that could not be run or reached or timed out. */
  readonly retries: number;
  /** A named hook's binding: its payload (with the `hook` section), env and name in run records. */
  readonly bound?: BoundHook;
}

export type ChainEntry = FilterEntry | ActionEntry | TargetEntry;

/** The entries one event of one endpoint runs, in order; null when there are none (one check per event). */
export type CompiledChain = readonly ChainEntry[] | null;

/** What an entry is called in run records and logs: `module:<folder>` or the transport's description. */
export function targetOf(entry: ChainEntry, event: UploadEventName): string {
  return entry.kind === 'target' ? describeTarget(entry.transport, event) : entry.step.target;
}

/** Each transport's descriptions by hook name (see {@link describeTarget}). */
const descriptions = new WeakMap<HookTransport, Map<string, string>>();

/**
 * `transport.describe(hook)`, made once per transport and hook: every delivery's run records name their target,
 * and a transport builds the text anew at each call. The one string also makes the run log's comparisons of
 * targets a pointer check.
 */
export function describeTarget(transport: HookTransport, hook: string): string {
  let byHook = descriptions.get(transport);
  if (byHook === undefined) {
    byHook = new Map();
    descriptions.set(transport, byHook);
  }
  let text = byHook.get(hook);
  if (text === undefined) {
    text = transport.describe(hook);
    byHook.set(hook, text);
  }
  return text;
}
