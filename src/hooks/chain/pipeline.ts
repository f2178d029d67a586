import { HookConfigError } from '../errors.ts';
import type { UploadEvent, UploadEventName } from '../events.ts';
import {
  type CloudEventsSettings,
  type FormattedEvent,
  formatEvent,
  type HookFormatName,
} from '../formats/index.ts';
import { type AmqpHooksConfig, AmqpHookTransport } from '../transports/amqp.ts';
import { DirHookTransport, FileHookTransport } from '../transports/file.ts';
import { HttpHookTransport } from '../transports/http.ts';
import { type KafkaHooksConfig, KafkaHookTransport } from '../transports/kafka.ts';
import { type NotifyService, notifyRequest, renderTemplate } from '../transports/notify-message.ts';
import type { DeliveryResult, HookTransport } from '../transports/types.ts';

/** A notify hook's body: its template rendered against the formatted payload (JSON), shaped for its service. */
function notifyRenderer(notify: NonNullable<NamedHookDeclaration['notify']>) {
  return (payload: string) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      parsed = {};
    }
    const title = notify.title === undefined ? undefined : renderTemplate(notify.title, parsed);
    return notifyRequest(notify.service, renderTemplate(notify.template, parsed), title);
  };
}

import type { WhenCondition } from './conditions.ts';

/** When a post hook runs: after a successful operation (default), after a failed one, or both. */
export const runOnValues = ['success', 'failure', 'always'] as const;
export type RunOn = (typeof runOnValues)[number];

/** Transports a named hook may use. */
export const namedHookTransports = ['file', 'dir', 'http', 'amqp', 'kafka', 'module', 'notify'] as const;
export type NamedHookTransport = (typeof namedHookTransports)[number];

/** amqp and kafka hooks never block (as in rustus): they hear of an event through the outbox. */
export function isBrokerTransport(transport: NamedHookTransport): transport is 'amqp' | 'kafka' {
  return transport === 'amqp' || transport === 'kafka';
}

/** A hook declared once by name in the config file (RESTHeart's named interceptors). */
export interface NamedHookDeclaration {
  readonly name: string;
  readonly transport: NamedHookTransport;
  /** file: the executable (argv[1] the event name, argv[2] and stdin the JSON payload). */
  readonly command?: string;
  /** file: `command` is a shell line run through `/bin/sh -c` (pipes, redirections, variables). */
  readonly shell?: boolean;
  /** file/dir: variables added to the hook's environment (the `WHARF_*` context variables win). */
  readonly env?: Readonly<Record<string, string>>;
  /** file/dir: the working directory of the hook's process. */
  readonly cwd?: string;
  /** dir: a folder holding one executable per event name (argv[1] and stdin the JSON payload). */
  readonly directory?: string;
  /** http: the URL the payload is POSTed to. */
  readonly url?: string;
  /** notify: the service whose incoming-webhook body is sent, the message template and an optional title. */
  readonly notify?: { readonly service: NotifyService; readonly template: string; readonly title?: string };
  /** http: Standard Webhooks `whsec_` secrets, newest first; every request is signed with each. */
  readonly secrets?: readonly string[];
  /** module: the folder name of a hook module; its filters/actions then run only where it is bound. */
  readonly module?: string;
  /** amqp: the resolved RabbitMQ settings (the hook's own over `--hooks-amqp-*`). */
  readonly amqp?: AmqpHooksConfig;
  /** kafka: the resolved Kafka settings (the hook's own over `--hooks-kafka-*`). */
  readonly kafka?: KafkaHooksConfig;
  /** Default: `--hooks-format`. */
  readonly format?: HookFormatName;
  /** Default: `--hooks-executable-timeout` for file hooks, `--http-hook-timeout` for HTTP hooks. */
  readonly timeoutMs?: number;
  /**
   * Extra immediate attempts of a blocking (pre-*) run that could not be run or reached or timed out (never
   * after a refusal). Post runs of http hooks go through the outbox and follow {@link retrySchedule} instead.
   */
  readonly retries: number;
  /**
   * http: delays (ms) before the 2nd, 3rd, … attempt of a post-* delivery through the outbox, then dead;
   * `[]` dead-letters at the first failure. Default: `--hooks-retry-schedule`.
   */
  readonly retrySchedule?: readonly number[];
  /** A failure cancels the operation and skips the following hooks. Default: true on pre-* events. */
  readonly critical?: boolean;
  /**
   * Borgitory's "continue on failure": a failure is recorded `failed`, the later hooks run and the operation goes
   * on (with a warning). The same as `critical: false`, whatever the event; both together are refused.
   */
  readonly continueOnFailure?: boolean;
  readonly runOn: RunOn;
  readonly args: Readonly<Record<string, unknown>>;
}

/** One use of a named hook by an endpoint, for some events, with its own args and condition. */
export interface HookBindingDeclaration {
  readonly hook: string;
  /** The endpoint's path, e.g. `/files`. */
  readonly endpoint: string;
  readonly events: readonly UploadEventName[];
  readonly args: Readonly<Record<string, unknown>>;
  readonly when?: WhenCondition;
  /** Lower runs first among the endpoint's bindings of an event; equal priorities keep declaration order. */
  readonly priority?: number;
}

export interface PipelineConfig {
  readonly hooks: readonly NamedHookDeclaration[];
  readonly bindings: readonly HookBindingDeclaration[];
  /** Endpoints that run only their bound hooks (`globalHooks: false`), by path. */
  readonly endpoints?: readonly { readonly path: string; readonly globalHooks?: boolean }[];
}

/** The paths of the endpoints that opted out of the global hooks (`globalHooks: false`). */
export function endpointsWithoutGlobalHooks(config: PipelineConfig | undefined): ReadonlySet<string> {
  return new Set(
    (config?.endpoints ?? []).filter((endpoint) => endpoint.globalHooks === false).map(({ path }) => path),
  );
}

export interface PipelineDefaults {
  readonly format: HookFormatName;
  readonly httpTimeoutMs: number;
  readonly executableTimeoutMs: number;
  readonly httpProxyHeaders: readonly string[];
  readonly baseEnv: NodeJS.ProcessEnv;
  /** `--hooks-cloudevents-*`, for hooks whose format is `cloudevents`. */
  readonly cloudEvents?: CloudEventsSettings;
  /** `--hooks-http-outbox`: post deliveries of http hooks go through the outbox (default true). */
  readonly httpOutbox?: boolean;
  /** `--hooks-retry-schedule`: the schedule of http hooks that set none. */
  readonly retrySchedule?: readonly number[];
  /**
   * The outbox target name of a binding, from its base name (`hook:<name>@<endpoint>#<n>`) and its content (the
   * hook's and the binding's declarations as JSON). Default: the base name.
   */
  readonly targetName?: (base: string, content: string) => string;
  /**
   * The transport a hook of this name already has, when its {@link transportKey} is this one: a set that
   * replaces the running one keeps the transports (and the connections) of the hooks that did not change.
   * Default: every hook gets a new transport.
   */
  readonly reuse?: (name: string, key: string) => HookTransport | undefined;
}

/**
 * What a hook's transport is made of (the fields {@link transportOf} reads), as JSON with sorted keys: two
 * declarations with the same key get transports that behave the same. Args, bindings, format, retries and the
 * like are not in it (they are read per delivery), so changing them keeps the transport.
 */
export function transportKey(hook: NamedHookDeclaration): string {
  const {
    transport,
    url,
    notify,
    secrets,
    timeoutMs,
    amqp,
    kafka,
    command,
    directory,
    env,
    cwd,
    shell,
    module,
  } = hook;
  return JSON.stringify(
    { transport, url, notify, secrets, timeoutMs, amqp, kafka, command, directory, env, cwd, shell, module },
    (_key, value: unknown) =>
      value !== null && typeof value === 'object' && !Array.isArray(value)
        ? Object.fromEntries(
            Object.entries(value).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)),
          )
        : value,
  );
}

/** A binding ready to run: its hook's transport and both argument sets. */
export interface BoundHook {
  readonly hook: NamedHookDeclaration;
  readonly binding: HookBindingDeclaration;
  readonly transport: HookTransport;
  readonly format: HookFormatName;
  /** The hook's args overlaid with the binding's. */
  readonly args: Readonly<Record<string, unknown>>;
  /** True when a failure cancels the operation (never for broker hooks). */
  readonly critical: boolean;
  /**
   * The binding's outbox target, through which its deliveries go: broker hooks on every event, http hooks on
   * post-* events (unless `--hooks-http-outbox false`).
   */
  readonly outboxTarget?: string;
  /** The payload in the hook's format plus its `hook` section ({@link Pipeline.payloadFor}). */
  payloadFor(event: UploadEvent, endpoint: string, eventId: string): FormattedEvent;
}

/**
 * The declared pipelines: for each event of each endpoint, the bound hooks in declaration order (Borgitory's
 * job hooks, RESTHeart's bindings). It picks the hooks of an event and builds what they receive; the engine
 * runs them.
 */
export class Pipeline {
  readonly #bindings: {
    binding: HookBindingDeclaration;
    hook: NamedHookDeclaration;
    transport: HookTransport;
    outboxTarget?: string;
  }[];
  readonly #format: HookFormatName;
  readonly #cloudEvents: CloudEventsSettings | undefined;
  /** One transport per broker hook (one connection pool each), shared by its bindings. */
  readonly brokerTransports: readonly HookTransport[];
  /** Every hook's transport (brokers included), for the engine to close. */
  readonly transports: readonly HookTransport[];
  /** Each hook's transport and its {@link transportKey}, by hook name (what a later set may reuse). */
  readonly transportsByHook: ReadonlyMap<string, { readonly key: string; readonly transport: HookTransport }>;
  /**
   * The outbox target of each broker binding and of each http binding with post events:
   * `hook:<name>@<endpoint>#<binding number>`, stable per file.
   */
  readonly outboxTargets: ReadonlyMap<string, HookTransport>;
  /** The retry schedule of each http outbox target: its hook's `retrySchedule`, else `--hooks-retry-schedule`. */
  readonly retrySchedules: ReadonlyMap<string, readonly number[]>;
  /** What each outbox target delivers for: its hook's and binding's declarations, as JSON. */
  readonly targetContents: ReadonlyMap<string, string>;

  constructor(config: PipelineConfig, defaults: PipelineDefaults) {
    this.#format = defaults.format;
    this.#cloudEvents = defaults.cloudEvents;
    const transports = new Map<string, HookTransport>();
    const transportsByHook = new Map<string, { key: string; transport: HookTransport }>();
    const brokers: HookTransport[] = [];
    for (const hook of config.hooks) {
      let transport: HookTransport | undefined;
      const key = transportKey(hook);
      try {
        transport = defaults.reuse?.(hook.name, key) ?? transportOf(hook, defaults);
      } catch (cause) {
        // A declaration that validated but that a transport refuses (an http URL whose user name does not
        // percent-decode): named, so that the admin API can say which hook to repair.
        throw new HookConfigError(`hooks.${hook.name}: cannot be used: ${(cause as Error).message}`, {
          cause,
        });
      }
      if (transport === undefined) continue;
      transports.set(hook.name, transport);
      transportsByHook.set(hook.name, { key, transport });
      if (isBrokerTransport(hook.transport)) brokers.push(transport);
    }
    this.transportsByHook = transportsByHook;
    this.brokerTransports = brokers;
    this.transports = [...transports.values()];
    const byName = new Map(config.hooks.map((hook) => [hook.name, hook]));
    const outboxTargets = new Map<string, HookTransport>();
    const retrySchedules = new Map<string, readonly number[]>();
    const targetContents = new Map<string, string>();
    this.#bindings = config.bindings.flatMap((binding, index) => {
      const hook = byName.get(binding.hook);
      const transport = transports.get(binding.hook);
      if (hook === undefined || transport === undefined) return [];
      const base = `hook:${hook.name}@${binding.endpoint}#${index}`;
      const content = JSON.stringify({ hook, binding });
      const outboxTarget = defaults.targetName?.(base, content) ?? base;
      targetContents.set(outboxTarget, content);
      if (isBrokerTransport(hook.transport)) {
        outboxTargets.set(outboxTarget, transport);
        return [{ binding, hook, transport, outboxTarget }];
      }
      const durableHttp =
        (hook.transport === 'http' || hook.transport === 'notify') &&
        defaults.httpOutbox !== false &&
        binding.events.some((event) => !event.startsWith('pre-'));
      if (!durableHttp) return [{ binding, hook, transport }];
      outboxTargets.set(outboxTarget, transport);
      const schedule = hook.retrySchedule ?? defaults.retrySchedule;
      if (schedule !== undefined) retrySchedules.set(outboxTarget, schedule);
      return [{ binding, hook, transport, outboxTarget }];
    });
    this.outboxTargets = outboxTargets;
    this.retrySchedules = retrySchedules;
    this.targetContents = targetContents;
  }

  /** Whether any binding listens to this event (on any endpoint). */
  has(event: UploadEventName): boolean {
    return this.#bindings.some(({ binding }) => binding.events.includes(event));
  }

  /** `hook:<name>` for every binding of the event, in order. */
  targets(event: UploadEventName): string[] {
    return this.#bindings
      .filter(({ binding }) => binding.events.includes(event))
      .map(({ hook, binding }) => `hook:${hook.name}@${binding.endpoint}`);
  }

  /**
   * The hooks bound to this event on this endpoint, by `priority` (lower first; equal ones in declared order);
   * each binding's `when` is checked per event by the chain's runner.
   */
  boundTo(event: UploadEventName, endpoint: string): BoundHook[] {
    const blocking = event.startsWith('pre-');
    const pipeline = this;
    return this.#bindings
      .filter(({ binding }) => binding.endpoint === endpoint && binding.events.includes(event))
      .sort((one, other) => (one.binding.priority ?? 0) - (other.binding.priority ?? 0))
      .map(({ binding, hook, transport, outboxTarget: bindingTarget }) => {
        // An http hook runs blocking on pre-* events; only its post deliveries go through the outbox.
        const outboxTarget =
          bindingTarget !== undefined && (isBrokerTransport(hook.transport) || !blocking)
            ? bindingTarget
            : undefined;
        return {
          payloadFor(event: UploadEvent, endpointPath: string, eventId: string): FormattedEvent {
            return pipeline.payloadFor(this, event, endpointPath, eventId);
          },
          hook,
          binding,
          transport,
          format: hook.format ?? this.#format,
          args: { ...hook.args, ...binding.args },
          critical:
            !isBrokerTransport(hook.transport) &&
            hook.continueOnFailure !== true &&
            (hook.critical ?? blocking),
          ...(outboxTarget !== undefined ? { outboxTarget } : {}),
        };
      });
  }

  /**
   * The payload in the hook's format plus a `hook` section (in CloudEvents' `data`): its name, both argument
   * sets, the error.
   */
  payloadFor(bound: BoundHook, event: UploadEvent, endpoint: string, eventId: string): FormattedEvent {
    const hook = {
      name: bound.hook.name,
      event: event.name,
      endpoint,
      args: bound.args,
      hookArgs: bound.hook.args,
      bindingArgs: bound.binding.args,
      ...(event.error !== undefined ? { error: event.error } : {}),
      ...(event.failure !== undefined ? { failure: event.failure } : {}),
    };
    const context = {
      eventId,
      ...(this.#cloudEvents !== undefined ? { cloudEvents: this.#cloudEvents } : {}),
    };
    return formatEvent(bound.format, event, context, { hook });
  }
}

/** The transport of one named hook (none for a broker hook without its broker's settings). */
function transportOf(hook: NamedHookDeclaration, defaults: PipelineDefaults): HookTransport | undefined {
  switch (hook.transport) {
    case 'amqp':
      return hook.amqp === undefined ? undefined : new AmqpHookTransport(hook.amqp);
    case 'kafka':
      return hook.kafka === undefined ? undefined : new KafkaHookTransport(hook.kafka);
    case 'module':
      return new BoundModuleTarget(hook.module ?? '');
    case 'file':
    case 'dir': {
      const options = {
        timeoutMs: hook.timeoutMs ?? defaults.executableTimeoutMs,
        baseEnv: defaults.baseEnv,
        ...(hook.env !== undefined ? { hookEnv: hook.env } : {}),
        ...(hook.cwd !== undefined ? { cwd: hook.cwd } : {}),
        ...(hook.shell === true ? { shell: true } : {}),
      };
      return hook.transport === 'file'
        ? new FileHookTransport(hook.command ?? '', options)
        : new DirHookTransport(hook.directory ?? '', options);
    }
    default:
      return new HttpHookTransport(hook.url ?? '', {
        timeoutMs: hook.timeoutMs ?? defaults.httpTimeoutMs,
        proxyHeaders: defaults.httpProxyHeaders,
        ...(hook.secrets !== undefined ? { secrets: hook.secrets } : {}),
        ...(hook.notify !== undefined ? { render: notifyRenderer(hook.notify) } : {}),
      });
  }
}

/**
 * Stands for a bound hook module in run records (`module:<folder>`). The engine runs the module's handlers
 * itself, with the binding's args in `context.args`; it never delivers through this.
 */
class BoundModuleTarget implements HookTransport {
  constructor(readonly module: string) {}

  describe(): string {
    return `module:${this.module}`;
  }

  async deliver(): Promise<DeliveryResult> {
    return { kind: 'spawn_failed', detail: 'a bound module runs in-process, not through a transport' };
  }
}

/** The module folders named hooks refer to: those modules run only where they are bound. */
export function boundModules(config: PipelineConfig | undefined): string[] {
  return (config?.hooks ?? []).flatMap((hook) =>
    hook.transport === 'module' && hook.module !== undefined ? [hook.module] : [],
  );
}

/** Whether a post hook with this runOn runs for an operation that succeeded (no error) or failed. */
export function runsFor(runOn: RunOn, failed: boolean): boolean {
  return runOn === 'always' || (runOn === 'failure') === failed;
}
