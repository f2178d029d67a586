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
import { urlLabel } from '../../hooks/delivery/target-guard.ts';
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

/**
 * What /health says of the named hooks stored through the admin API: loaded and in force, not read yet (the
 * store's last error), or read but not fitting the running configuration (how many problems: /health answers
 * anyone, and a problem names hooks, bindings and the values they hold, so the problems themselves are only in the
 * log and the admin API).
 */
export type NamedHooksHealth =
  | { readonly status: 'ok' }
  | { readonly status: 'unavailable'; readonly error: string }
  | { readonly status: 'unfit'; readonly problemCount: number };

/** Where a problem is (`bindings[<id>].hook`, `hooks.crm.url`): the text before its first `: `. */
function placeOf(problem: string): string {
  const end = problem.indexOf(': ');
  return end === -1 ? problem : problem.slice(0, end);
}

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
 *
 * The stored hooks are never skipped: one may be a pre-create hook that authorises uploads. Until the document
 * has been read, and while the one read does not fit the running configuration, requests that may run hooks
 * are refused with 503 (ERR_NAMED_HOOKS_UNAVAILABLE, ERR_NAMED_HOOKS_UNFIT) rather than run without them.
 */
export class RuntimeNamedHooks {
  readonly #options: RuntimeNamedHooksOptions;
  /**
   * The stored document last read or written and the store version it came from: the one installed in the
   * engine, or, while {@link #unfit} is set, the one that could not be.
   */
  #document: RuntimeHooksDocument = emptyDocument;
  #version = 0;
  /**
   * The problems of {@link #document} against the running configuration (a binding naming a hook the file no
   * longer declares, a hook the file now declares too, ...); undefined while it fits. Cleared by an admin API
   * change or a reload of --config after which it fits, or by another instance's change that fits.
   */
  #unfit: readonly string[] | undefined;
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
  /** Why the last attempt to load failed, while none has succeeded (for /health). */
  #loadError = 'not read yet';
  /** The next attempt to load, while the store has not answered since start. */
  #retryTimer: NodeJS.Timeout | undefined;
  #nextRetryAt = 0;
  #stopped = false;

  constructor(options: RuntimeNamedHooksOptions) {
    this.#options = options;
  }

  /**
   * Loads the stored document at start. One that does not fit the config file is kept (listed, repairable
   * through the admin API) and requests that may run hooks get 503 until it fits. A store that does not answer
   * does not stop the start (uploads can still be read: GET and HEAD); it is asked again in the background
   * until it answers, and requests that may run hooks get 503 meanwhile.
   */
  async start(): Promise<void> {
    try {
      await this.#check();
    } catch (error) {
      if (this.#loaded) return;
      this.#loadError = messageOf(error);
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

  /**
   * The state after reading the store's version (and the document when it changed): what work that runs hooks
   * without a request of its own (the expiration sweep) checks first, since no request brings another
   * instance's repair here. A store that does not answer leaves the last known state.
   */
  async checkedHealth(): Promise<NamedHooksHealth> {
    await this.#check().catch(() => undefined);
    return this.health();
  }

  /** The state /health reports. */
  health(): NamedHooksHealth {
    if (!this.#loaded) return { status: 'unavailable', error: this.#loadError };
    if (this.#unfit !== undefined) return { status: 'unfit', problemCount: this.#unfit.length };
    return { status: 'ok' };
  }

  /**
   * The stored document does not fit (`problems`), or fits again (undefined): logged when that changes, an
   * error while it does not fit, since every request that may run hooks is refused meanwhile.
   */
  #setUnfit(problems: readonly string[] | undefined): void {
    const before = this.#unfit;
    this.#unfit = problems;
    if (problems === undefined) {
      if (before !== undefined)
        this.#options.logger.info(
          { version: this.#version },
          'the named hooks stored through the admin API fit the running configuration again; requests that may run hooks are served again',
        );
      return;
    }
    if (before !== undefined && before.join('\n') === problems.join('\n')) return;
    this.#options.logger.error(
      { version: this.#version, problems },
      'the named hooks stored through the admin API do not fit the running configuration; requests that may run hooks (POST, PATCH, DELETE) answer 503 ERR_NAMED_HOOKS_UNFIT until the stored hooks are repaired through the admin API or the config file is changed and reloaded',
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
          // A document that does not fit was logged as such when it was read.
          if (this.#loaded && this.#unfit === undefined)
            this.#options.logger.info(
              { attempts: attempts + 1 },
              'the named hooks stored through the admin API are loaded; requests that may run hooks are served again',
            );
        },
        (error: unknown) => {
          // Loaded meanwhile by an admin API change, and this check met the store away: nothing to retry.
          if (this.#loaded) return;
          const message = messageOf(error);
          this.#loadError = message;
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
   * The set a request that may run hooks runs with; ERR_NAMED_HOOKS_UNFIT (503) while the stored document does not
   * fit. No Retry-After: waiting does not repair it, an operator does. The answer does not name the problems: it
   * goes to upload clients, and a problem names hooks, bindings and their values (the log and the admin API do).
   */
  #served(): HookSet {
    if (this.#unfit === undefined) return this.#options.engine.hookSet;
    throw new WharfError('ERR_NAMED_HOOKS_UNFIT');
  }

  /**
   * The set a request starting now runs with: the store's version is checked first when other processes share
   * it and the request may run hooks (anything but GET, HEAD and OPTIONS). Throws ERR_NAMED_HOOKS_UNAVAILABLE
   * (503) for such a request while the stored hooks have not been loaded since start, and ERR_NAMED_HOOKS_UNFIT
   * (503) while the stored document does not fit the running configuration.
   */
  pin(method: string): HookSet | Promise<HookSet> {
    const engine = this.#options.engine;
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return engine.hookSet;
    if (!this.#loaded) throw this.#unavailable();
    if (!this.#options.store.shared) return this.#served();
    if (Date.now() < this.#skipChecksUntil) return this.#served();
    return this.#check().then(
      () => this.#served(),
      (error: unknown) => {
        if (Date.now() >= this.#skipChecksUntil) this.#skipChecksUntil = Date.now() + 1000;
        this.#options.logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          'could not check the named hooks version; the request runs the last known set',
        );
        return this.#served();
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

  /**
   * Reads the stored document when its version changed and installs it; one that does not fit is kept as
   * the stored document (not tried again until the next change or reload) and refuses requests until it fits.
   */
  async #refresh(): Promise<void> {
    const known = this.#version;
    const version = await this.#options.store.version();
    if (version === this.#version) {
      // Version 0 at start: nothing was ever stored, which the store has now said.
      this.#loaded = true;
      return;
    }
    const stored = await this.#options.store.read();
    this.#loaded = true;
    // An admin API change of this instance landed while the store read: what it installed may be newer than this
    // read (a pool of connections can answer an earlier query after a later one), and installing the read would
    // undo it here (a new binding of an authorising hook dropped) with nothing to set it right. The next check
    // reads again if the store holds yet another version.
    if (this.#version !== known) return;
    if (stored.version === this.#version) return;
    this.#version = Math.max(this.#version, stored.version);
    const document = documentOf(stored.document);
    const file = this.#options.file();
    try {
      this.#install(document, this.#validate(document, file), file);
    } catch (error) {
      this.#document = document;
      this.#setUnfit(problemsOf(error));
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

  /** The problems of a document against `file`; none when it fits. */
  #problemsOf(document: RuntimeHooksDocument, file: WharfFile | undefined): readonly string[] {
    try {
      this.#validate(document, file);
      return [];
    } catch (error) {
      return problemsOf(error);
    }
  }

  /** Installs a document that fits (throws, changing nothing, when the engine cannot build its set). */
  #install(document: RuntimeHooksDocument, validated: RuntimeHooks, file: WharfFile | undefined): HookSet {
    const set = this.#options.engine.replaceNamedHooks(combined(file, validated));
    this.#document = document;
    this.#setUnfit(undefined);
    return set;
  }

  /**
   * Installs the set of a reloaded --config (SIGHUP) with the stored hooks joined, and returns it. When the
   * stored document fits the running file but not the new one, the reload fails (ConfigError) and the running
   * set stays: a reload must not take away hooks that work. When it did not fit the running file either, the
   * new file is installed alone and requests stay refused (ERR_NAMED_HOOKS_UNFIT, with the new file's
   * problems) until the stored hooks are repaired; when the new file fits it, they are served again.
   */
  reload(file: WharfFile): HookSet {
    let validated: RuntimeHooks;
    try {
      validated = this.#validate(this.#document, file);
    } catch (error) {
      if (!(error instanceof NamedHooksError)) throw error;
      if (this.#unfit === undefined) {
        throw new ConfigError(
          `${file.file}: the hooks and bindings added through the admin API do not fit it:\n  ${error.problems.join('\n  ')}`,
        );
      }
      const set = this.#options.engine.replaceNamedHooks(combined(file, { hooks: [], bindings: [] }));
      this.#setUnfit(error.problems);
      return set;
    }
    return this.#install(this.#document, validated, file);
  }

  /**
   * The named hooks and bindings in force, from the file and from the admin API; ERR_NAMED_HOOKS_UNAVAILABLE
   * while the admin API's have not been loaded since start (a list without them would say there are none).
   * While the stored document does not fit, it is listed as stored, with `problems`: what to repair.
   */
  async list(): Promise<{
    version: number;
    hooks: object[];
    bindings: object[];
    problems?: readonly string[];
  }> {
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
      ...(this.#unfit !== undefined ? { problems: this.#unfit } : {}),
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
    const configured = (this.#options.file()?.hooks ?? []).some((hook) => hook.name === name);
    await this.#change((document) => {
      // A stored hook the config file came to declare too (it does not fit): deleting it is the repair, and
      // the bindings naming it then name the file's hook.
      if (!(name in document.hooks))
        throw new NamedHooksError(configured ? 'ERR_ADMIN_HOOK_CONFIGURED' : 'ERR_ADMIN_HOOK_NOT_FOUND');
      if (!configured && document.bindings.some((binding) => binding.hook === name)) {
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
   * When the stored document does not fit, a change that leaves problems is still written if it adds none
   * (each is where one already was): an operator repairs it one request at a time, and requests are served
   * again once the result fits.
   */
  async #change(
    change: (document: RuntimeHooksDocument) => RuntimeHooksDocument,
    approve?: () => Promise<void>,
  ): Promise<void> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const stored = await this.#options.store.read();
      const current = documentOf(stored.document);
      const next = change(current);
      const file = this.#options.file();
      let validated: RuntimeHooks | undefined;
      let remaining: readonly string[] = [];
      try {
        validated = this.#validate(next, file);
      } catch (error) {
        if (!(error instanceof NamedHooksError)) throw error;
        const before = new Set(this.#problemsOf(current, file).map(placeOf));
        if (before.size === 0 || error.problems.some((problem) => !before.has(placeOf(problem)))) throw error;
        remaining = error.problems;
      }
      // A change the engine cannot run (a transport refuses a hook that validated) is refused here, before it is
      // written: stored, it would refuse every request that may run hooks (503) until repaired.
      if (validated !== undefined) {
        try {
          this.#options.engine.checkNamedHooks(combined(file, validated));
        } catch (error) {
          throw new NamedHooksError('ERR_ADMIN_HOOK_INVALID', [messageOf(error)]);
        }
      }
      if (attempt === 0) await approve?.();
      if (!(await this.#options.store.write(next, stored.version))) continue;
      this.#version = Math.max(this.#version, stored.version + 1);
      // The whole stored document was read to write it: that loads it too.
      this.#loaded = true;
      if (validated !== undefined) {
        try {
          this.#install(next, validated, file);
        } catch (error) {
          // Written, but the engine could not build its set after all (checked above): refused like a read.
          this.#document = next;
          this.#setUnfit(problemsOf(error));
          throw error;
        }
      } else {
        this.#document = next;
        this.#setUnfit(remaining);
      }
      return;
    }
    throw new NamedHooksError('ERR_ADMIN_HOOKS_BUSY');
  }
}

/** The problems an error of validation or installation names (one, its message, for any other error). */
function problemsOf(error: unknown): readonly string[] {
  if (error instanceof NamedHooksError && error.problems.length > 0) return error.problems;
  return [messageOf(error)];
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

/**
 * A declaration as the API shows it: signing secrets never leave, and the URL is shown by its label (scheme, host
 * and port: user info, path and query are where secrets live), as targets are.
 */
function shown(declaration: unknown): object {
  if (typeof declaration !== 'object' || declaration === null) return {};
  const { secret, secrets, ...rest } = declaration as Record<string, unknown>;
  return {
    ...rest,
    ...(typeof rest.url === 'string' ? { url: urlLabel(rest.url) } : {}),
    ...(secret !== undefined || secrets !== undefined ? { signed: true } : {}),
  };
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
