import { randomUUID } from 'node:crypto';
import {
  type InheritedHookSettings,
  type RuntimeHooks,
  type RuntimeHooksDocument,
  validateRuntimeHooks,
  type WharfFile,
} from '../../config/config-file.ts';
import { ConfigError } from '../../config/option-table.ts';
import { WharfError } from '../../errors.ts';
import type { PipelineConfig } from '../../hooks/chain/pipeline.ts';
import type { HookEngine, HookSet } from '../../hooks/engine.ts';
import type { NamedHooksStore } from '../../info/named-hooks-store.ts';
import type { Logger } from '../../logger.ts';

/** A change refused, with the admin API's error code and, for invalid input, the problems as --config says them. */
export class NamedHooksError extends Error {
  constructor(
    readonly code:
      | 'ERR_ADMIN_HOOK_INVALID'
      | 'ERR_ADMIN_HOOK_TRANSPORT'
      | 'ERR_ADMIN_HOOK_CONFIGURED'
      | 'ERR_ADMIN_HOOK_IN_USE'
      | 'ERR_ADMIN_HOOK_NOT_FOUND'
      | 'ERR_ADMIN_BINDING_NOT_FOUND'
      | 'ERR_ADMIN_HOOKS_BUSY'
      | 'ERR_ADMIN_TARGET_EVENT'
      | 'ERR_NAMED_HOOKS_UNAVAILABLE',
    readonly problems: readonly string[] = [],
  ) {
    super(code);
  }
}

/** Transports a hook declared through the admin API may use: they reach a URL, they run nothing here. */
export const runtimeHookTransports = ['http', 'notify'] as const;

const emptyDocument: RuntimeHooksDocument = { hooks: {}, bindings: [] };

/** Waits between the attempts to load the stored document at start: doubling from the first, up to the last. */
const firstRetryMs = 500;
const longestRetryMs = 5_000;
/** A failure with the same cause as the last one logged is logged again only after this long. */
const repeatWarningMs = 60_000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function documentOf(value: unknown): RuntimeHooksDocument {
  if (typeof value !== 'object' || value === null) return emptyDocument;
  const { hooks, bindings } = value as { hooks?: unknown; bindings?: unknown };
  return {
    hooks:
      typeof hooks === 'object' && hooks !== null && !Array.isArray(hooks)
        ? (hooks as Record<string, unknown>)
        : {},
    bindings: Array.isArray(bindings) ? (bindings as RuntimeHooksDocument['bindings']) : [],
  };
}

export interface RuntimeNamedHooksOptions {
  readonly store: NamedHooksStore;
  readonly engine: HookEngine;
  /** The --config file as last loaded (start or SIGHUP); undefined without one. */
  readonly file: () => WharfFile | undefined;
  /** The served endpoints' paths (`/files`). */
  readonly endpoints: readonly string[];
  readonly inherited: InheritedHookSettings;
  readonly logger: Logger;
}

/**
 * RESTHeart's run-time bindings for Wharf: named hooks and bindings created, changed and deleted through the
 * admin API, kept in the info storage (one versioned document), joined to the --config ones and installed in
 * the engine. Another instance's change is seen through the version: with a shared store every request that
 * may run hooks (POST, PATCH, DELETE) reads it when it starts, so a change made anywhere applies to every
 * request that starts after it, and never to one in flight (the engine's sets are pinned per request).
 */
export class RuntimeNamedHooks {
  readonly #options: RuntimeNamedHooksOptions;
  /** The document installed in the engine and the store version it came from. */
  #document: RuntimeHooksDocument = emptyDocument;
  #version = 0;
  #checking: Promise<void> | undefined;
  #nextCheck: Promise<void> | undefined;
  /**
   * After a check that failed (the store down or hung), requests use the last known set for a second rather
   * than each waiting for a check that will time out too (a change cannot be written meanwhile either).
   */
  #skipChecksUntil = 0;
  /**
   * Whether the store has answered once (the document read, or none stored). Until then the hooks in force are
   * unknown: one may be a pre-create hook that authorises uploads, so requests that may run hooks are refused
   * (fail closed) rather than run without it.
   */
  #loaded = false;
  /** The next attempt to load, while the store has not answered since start. */
  #retryTimer: NodeJS.Timeout | undefined;
  #nextRetryAt = 0;
  #stopped = false;

  constructor(options: RuntimeNamedHooksOptions) {
    this.#options = options;
  }

  /**
   * Loads the stored document at start; one that no longer fits (a hook left the file) is logged and skipped.
   * A store that does not answer does not stop the start (uploads can still be read: GET and HEAD); it is asked
   * again in the background until it answers, and requests that may run hooks get 503 meanwhile.
   */
  async start(): Promise<void> {
    try {
      await this.#check();
    } catch (error) {
      if (this.#loaded) {
        this.#logUnfit(error);
        return;
      }
      this.#options.logger.warn(
        { error: messageOf(error), retryInMs: firstRetryMs },
        'the named hooks stored through the admin API could not be loaded; requests that may run hooks (POST, PATCH, DELETE) answer 503 until they are; retrying',
      );
      this.#scheduleRetry(firstRetryMs, 1, { message: messageOf(error), at: Date.now() });
    }
  }

  /** Stops the retries of a load that has not succeeded yet (at shutdown). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  #logUnfit(error: unknown): void {
    this.#options.logger.error(
      {
        error: messageOf(error),
        ...(error instanceof NamedHooksError && error.problems.length > 0
          ? { problems: error.problems }
          : {}),
      },
      'the named hooks stored through the admin API do not fit the running configuration; running without them',
    );
  }

  /**
   * One more attempt after `delayMs`, doubling the wait each time up to {@link longestRetryMs}: a store that is
   * down costs one query every few seconds, not one per request. A failure is logged when its cause changes, or
   * once a minute while it stays the same.
   */
  #scheduleRetry(delayMs: number, attempts: number, logged: { message: string; at: number }): void {
    if (this.#stopped) return;
    this.#nextRetryAt = Date.now() + delayMs;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#check().then(
        () => {
          if (this.#loaded)
            this.#options.logger.info(
              { attempts: attempts + 1 },
              'the named hooks stored through the admin API are loaded; requests that may run hooks are served again',
            );
        },
        (error: unknown) => {
          if (this.#loaded) {
            // Read but unusable; or loaded meanwhile by an admin API change, and this check met the store away.
            if (error instanceof NamedHooksError) this.#logUnfit(error);
            return;
          }
          const message = messageOf(error);
          const next = Math.min(delayMs * 2, longestRetryMs);
          let warned = logged;
          if (message !== logged.message || Date.now() - logged.at >= repeatWarningMs) {
            this.#options.logger.warn(
              { error: message, attempts: attempts + 1, retryInMs: next },
              'the named hooks stored through the admin API still cannot be loaded; requests that may run hooks answer 503',
            );
            warned = { message, at: Date.now() };
          }
          this.#scheduleRetry(next, attempts + 1, warned);
        },
      );
    }, delayMs);
    // The retries alone do not keep the process alive; stop() ends them at shutdown.
    this.#retryTimer.unref();
  }

  /** The refusal of a request that may run hooks while the stored ones are unknown. */
  #unavailable(): WharfError {
    const seconds = Math.max(1, Math.ceil((this.#nextRetryAt - Date.now()) / 1000));
    return new WharfError('ERR_NAMED_HOOKS_UNAVAILABLE', { headers: { 'Retry-After': String(seconds) } });
  }

  /**
   * The set a request starting now runs with: the store's version is checked first when other processes share
   * it and the request may run hooks (anything but GET, HEAD and OPTIONS). Throws ERR_NAMED_HOOKS_UNAVAILABLE
   * (503) for such a request while the stored hooks have not been loaded since start.
   */
  pin(method: string): HookSet | Promise<HookSet> {
    const engine = this.#options.engine;
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return engine.hookSet;
    if (!this.#loaded) throw this.#unavailable();
    if (!this.#options.store.shared) return engine.hookSet;
    if (Date.now() < this.#skipChecksUntil) return engine.hookSet;
    return this.#check().then(
      () => engine.hookSet,
      (error: unknown) => {
        if (Date.now() >= this.#skipChecksUntil) this.#skipChecksUntil = Date.now() + 1000;
        this.#options.logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          'could not check the named hooks version; the request runs the last known set',
        );
        return engine.hookSet;
      },
    );
  }

  /** One check at a time; requests arriving while one runs share the next one, which starts after them. */
  #check(): Promise<void> {
    if (this.#checking === undefined) {
      const checking = this.#refresh().finally(() => {
        if (this.#checking === checking) this.#checking = undefined;
      });
      this.#checking = checking;
      return checking;
    }
    if (this.#nextCheck === undefined) {
      this.#nextCheck = this.#checking
        .catch(() => undefined)
        .then(() => {
          this.#nextCheck = undefined;
          return this.#check();
        });
    }
    return this.#nextCheck;
  }

  async #refresh(): Promise<void> {
    const version = await this.#options.store.version();
    if (version === this.#version) {
      // Version 0 at start: nothing was ever stored, which the store has now said.
      this.#loaded = true;
      return;
    }
    const stored = await this.#options.store.read();
    if (stored.version === this.#version) {
      this.#loaded = true;
      return;
    }
    const document = documentOf(stored.document);
    try {
      this.#install(document, this.#validate(document, this.#options.file()), this.#options.file());
    } finally {
      // A document that cannot be used is not tried again until the next change. It was read all the same:
      // what it holds is known (and logged), so it does not keep requests waiting.
      this.#version = Math.max(this.#version, stored.version);
      this.#loaded = true;
    }
  }

  #validate(document: RuntimeHooksDocument, file: WharfFile | undefined): RuntimeHooks {
    try {
      return validateRuntimeHooks(
        document,
        file?.hooks ?? [],
        this.#options.endpoints,
        this.#options.inherited,
      );
    } catch (error) {
      if (error instanceof ConfigError)
        throw new NamedHooksError('ERR_ADMIN_HOOK_INVALID', error.message.split('\n'));
      throw error;
    }
  }

  #install(document: RuntimeHooksDocument, validated: RuntimeHooks, file: WharfFile | undefined): void {
    this.#options.engine.replaceNamedHooks(combined(file, validated));
    this.#document = document;
    // An admin API change read the whole stored document to write it: that loads it too.
    this.#loaded = true;
  }

  /**
   * The set a reloaded --config gives with the admin API's hooks joined; throws (the reload fails, the old set
   * stays) when the stored hooks and bindings do not fit the new file.
   */
  withFile(file: WharfFile): PipelineConfig {
    try {
      const validated = validateRuntimeHooks(
        this.#document,
        file.hooks,
        this.#options.endpoints,
        this.#options.inherited,
      );
      return combined(file, validated);
    } catch (error) {
      if (error instanceof ConfigError) {
        throw new ConfigError(
          `${file.file}: the hooks and bindings added through the admin API do not fit it:\n  ${error.message.split('\n').join('\n  ')}`,
        );
      }
      throw error;
    }
  }

  /**
   * The named hooks and bindings in force, from the file and from the admin API; ERR_NAMED_HOOKS_UNAVAILABLE
   * while the admin API's have not been loaded since start (a list without them would say there are none).
   */
  async list(): Promise<{ version: number; hooks: object[]; bindings: object[] }> {
    await this.#check().catch(() => undefined);
    if (!this.#loaded) throw new NamedHooksError('ERR_NAMED_HOOKS_UNAVAILABLE');
    const file = this.#options.file();
    return {
      version: this.#version,
      hooks: [
        ...(file?.hooks ?? []).map((hook) => ({
          name: hook.name,
          source: 'config',
          transport: hook.transport,
        })),
        ...Object.entries(this.#document.hooks).map(([name, declaration]) => ({
          name,
          source: 'admin',
          ...shown(declaration),
        })),
      ],
      bindings: [
        ...(file?.bindings ?? []).map((binding) => ({ source: 'config', ...bindingShown(binding) })),
        ...this.#document.bindings.map((binding) => ({ source: 'admin', ...binding })),
      ],
    };
  }

  /**
   * Creates or replaces a hook of the admin API; true when it was created. `approve` (the URL guard) runs once
   * the declaration is known to be valid, before anything is written.
   */
  async putHook(
    name: string,
    declaration: Record<string, unknown>,
    approve: () => Promise<void> = async () => undefined,
  ): Promise<boolean> {
    const transport = declaration.transport;
    if (typeof transport === 'string' && !(runtimeHookTransports as readonly string[]).includes(transport)) {
      throw new NamedHooksError('ERR_ADMIN_HOOK_TRANSPORT');
    }
    if ((this.#options.file()?.hooks ?? []).some((hook) => hook.name === name)) {
      throw new NamedHooksError('ERR_ADMIN_HOOK_CONFIGURED');
    }
    let created = false;
    await this.#change((document) => {
      created = !(name in document.hooks);
      return { ...document, hooks: { ...document.hooks, [name]: declaration } };
    }, approve);
    return created;
  }

  async deleteHook(name: string): Promise<void> {
    if ((this.#options.file()?.hooks ?? []).some((hook) => hook.name === name)) {
      throw new NamedHooksError('ERR_ADMIN_HOOK_CONFIGURED');
    }
    await this.#change((document) => {
      if (!(name in document.hooks)) throw new NamedHooksError('ERR_ADMIN_HOOK_NOT_FOUND');
      if (document.bindings.some((binding) => binding.hook === name)) {
        throw new NamedHooksError('ERR_ADMIN_HOOK_IN_USE');
      }
      const { [name]: _removed, ...hooks } = document.hooks;
      return { ...document, hooks };
    });
  }

  /** Adds a binding (`id` undefined) or replaces one; returns it with its id. */
  async putBinding(
    id: string | undefined,
    binding: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const { id: _ignored, ...fields } = binding;
    const stored: Record<string, unknown> & { id: string } = { ...fields, id: id ?? randomUUID() };
    await this.#change((document) => {
      if (id !== undefined && !document.bindings.some((existing) => existing.id === id)) {
        throw new NamedHooksError('ERR_ADMIN_BINDING_NOT_FOUND');
      }
      const hook = stored.hook;
      // Hooks declared through the API hear post events only, like run-time targets; file hooks any event.
      if (typeof hook === 'string' && hook in document.hooks && blockingEventsIn(stored.events)) {
        throw new NamedHooksError('ERR_ADMIN_TARGET_EVENT');
      }
      const bindings =
        id === undefined
          ? [...document.bindings, stored]
          : document.bindings.map((existing) => (existing.id === id ? stored : existing));
      return { ...document, bindings };
    });
    return stored;
  }

  async deleteBinding(id: string): Promise<void> {
    await this.#change((document) => {
      if (!document.bindings.some((binding) => binding.id === id)) {
        throw new NamedHooksError('ERR_ADMIN_BINDING_NOT_FOUND');
      }
      return { ...document, bindings: document.bindings.filter((binding) => binding.id !== id) };
    });
  }

  /**
   * Reads the stored document, changes it, validates the result like --config and writes it if nobody wrote in
   * between (else starts over, a few times); then installs it here. Other instances see it by its version.
   */
  async #change(
    change: (document: RuntimeHooksDocument) => RuntimeHooksDocument,
    approve?: () => Promise<void>,
  ): Promise<void> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const stored = await this.#options.store.read();
      const next = change(documentOf(stored.document));
      const file = this.#options.file();
      const validated = this.#validate(next, file);
      if (attempt === 0) await approve?.();
      if (!(await this.#options.store.write(next, stored.version))) continue;
      this.#install(next, validated, file);
      this.#version = Math.max(this.#version, stored.version + 1);
      return;
    }
    throw new NamedHooksError('ERR_ADMIN_HOOKS_BUSY');
  }
}

function blockingEventsIn(events: unknown): boolean {
  const items = typeof events === 'string' ? events.split(',') : Array.isArray(events) ? events : [];
  return items.some((item) => typeof item === 'string' && item.trim().startsWith('pre-'));
}

/** The file's set with the admin API's hooks and bindings after it. */
function combined(file: WharfFile | undefined, runtime: RuntimeHooks): PipelineConfig {
  return {
    hooks: [...(file?.hooks ?? []), ...runtime.hooks],
    bindings: [...(file?.bindings ?? []), ...runtime.bindings],
    endpoints: file?.endpoints ?? [],
  };
}

/** A declaration as the API shows it: signing secrets never leave. */
function shown(declaration: unknown): object {
  if (typeof declaration !== 'object' || declaration === null) return {};
  const { secret, secrets, ...rest } = declaration as Record<string, unknown>;
  return { ...rest, ...(secret !== undefined || secrets !== undefined ? { signed: true } : {}) };
}

function bindingShown(binding: WharfFile['bindings'][number]): object {
  return {
    endpoint: binding.endpoint,
    hook: binding.hook,
    events: binding.events,
    args: binding.args,
    ...(binding.when !== undefined ? { when: binding.when } : {}),
    ...(binding.priority !== undefined ? { priority: binding.priority } : {}),
  };
}
