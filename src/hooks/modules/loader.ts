import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type RunOn, runOnValues } from '../chain/pipeline.ts';
import { eventsMatching, isBlockingEvent, type UploadEventName, uploadEventNames } from '../events.ts';
import { CronSchedule } from './cron.ts';
import {
  IsolatedModule,
  type IsolatedRegistration,
  type ModuleIsolation,
  readIsolation,
} from './isolation.ts';
import { HookModules } from './registry.ts';
import {
  type FilterHandler,
  type HookModule,
  type HookModuleContext,
  type HookRegistrar,
  type InitEventName,
  initEventNames,
  type ModuleLogger,
} from './types.ts';

/** A module that cannot be loaded or registered: start-up fails with its path and the reason. */
export class HookModuleError extends Error {
  readonly code = 'ERR_HOOK_MODULE';
  readonly file: string;

  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super(`hook module ${file}: ${reason}`, options);
    this.name = 'HookModuleError';
    this.file = file;
  }
}

const entryNames = ['index.js', 'index.mjs', 'index.ts'] as const;

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

type ScopedImport = (specifier: string, parentUrl: string) => Promise<unknown>;
let typeScriptImport: Promise<ScopedImport> | undefined;

/**
 * `index.ts` modules are compiled on the fly by tsx's scoped import, when tsx is installed (Node 20 cannot
 * strip types). Scoped: Wharf's own imports are not affected.
 */
async function importTypeScript(file: string, reload: number): Promise<unknown> {
  typeScriptImport ??= (async () => {
    const specifier = 'tsx/esm/api';
    const tsx = (await import(specifier)) as { tsImport: ScopedImport };
    return tsx.tsImport;
  })();
  let tsImport: ScopedImport;
  try {
    tsImport = await typeScriptImport;
  } catch (cause) {
    throw new HookModuleError(file, 'TypeScript modules need the tsx package installed (npm install tsx)', {
      cause,
    });
  }
  return tsImport(entryUrl(file, reload), import.meta.url);
}

/** The URL an entry file is imported as: a reload's own query makes Node's module cache read the file again. */
function entryUrl(file: string, reload: number): string {
  const url = pathToFileURL(file);
  if (reload > 0) url.search = `reload=${reload}`;
  return url.href;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function registrarFor(modules: HookModules, name: string, context: HookModuleContext): HookRegistrar {
  const entry = <Handler>(handler: Handler) => ({ module: name, handler, context });
  const checkHandler = (kind: string, handler: unknown): void => {
    if (typeof handler !== 'function') throw new TypeError(`${kind} needs a handler function`);
  };
  return {
    filter(event, handler) {
      checkHandler('filter', handler);
      // A filter's `*` means every event a filter can run on: `*` and `pre-*` are the same for filters.
      const matched = eventsMatching(String(event))?.filter(isBlockingEvent);
      if (matched === undefined || matched.length === 0) {
        const blocking = uploadEventNames.filter(isBlockingEvent).join(', ');
        throw new TypeError(
          `filter("${String(event)}"): filters run on blocking events (${blocking}, or pre-* or * for all)`,
        );
      }
      for (const name of matched)
        modules.filters.set(name, [...(modules.filters.get(name) ?? []), entry(handler)]);
    },
    action(event, handler, options) {
      checkHandler('action', handler);
      // An action's `*` means every event an action can run on (the post events), as `post-*` does.
      const matched = eventsMatching(String(event))?.filter((name) => !isBlockingEvent(name));
      if (matched === undefined || matched.length === 0) {
        const post = uploadEventNames.filter((name) => !isBlockingEvent(name)).join(', ');
        throw new TypeError(
          `action("${String(event)}"): actions run on non-blocking events (${post}, or post-* or * for all)`,
        );
      }
      const runOn = options?.runOn ?? 'success';
      if (!(runOnValues as readonly string[]).includes(runOn)) {
        throw new TypeError(`action("${event}"): runOn must be one of ${runOnValues.join(', ')}`);
      }
      for (const name of matched)
        modules.actions.set(name, [...(modules.actions.get(name) ?? []), { ...entry(handler), runOn }]);
    },
    init(event, handler) {
      checkHandler('init', handler);
      if (!(initEventNames as readonly string[]).includes(event)) {
        throw new TypeError(`init("${String(event)}"): expected one of ${initEventNames.join(', ')}`);
      }
      const name = event as InitEventName;
      modules.inits.set(name, [...(modules.inits.get(name) ?? []), entry(handler)]);
    },
    schedule(cron, handler) {
      checkHandler('schedule', handler);
      modules.schedules.push({ ...entry(handler), cron: new CronSchedule(String(cron)), running: false });
    },
  };
}

/**
 * Loads every hook module of `directory`: each subfolder's `index.js`, `index.mjs` or `index.ts` (first found),
 * whose default export `register(hooks, context)` is called once. A missing directory means no modules; any
 * broken module throws a {@link HookModuleError} naming it. Folders load in name order.
 */
export async function loadHookModules(
  directory: string,
  contextFor: (moduleName: string) => Omit<HookModuleContext, 'emitter'>,
  logger: ModuleLogger,
  /** `--hooks-executable-timeout`: an isolated module's run timeout unless its wharf-module.json sets one. */
  hookTimeoutMs = 30_000,
  /**
   * 0 at start; the reload's number on SIGHUP. Above 0, each entry file is imported as `<file URL>?reload=<n>`,
   * a URL Node's module cache has not seen, so the file is read again. What an entry file imports itself is
   * cached under its own URL and is not read again (a restart reloads it).
   */
  reload = 0,
): Promise<HookModules> {
  const modules = new HookModules(logger);
  try {
    await loadInto(modules, directory, contextFor, hookTimeoutMs, reload);
  } catch (error) {
    // Isolated modules already started (a later folder broke the load) end with the set they joined.
    modules.stopEmitter();
    throw error;
  }
  return modules;
}

async function loadInto(
  modules: HookModules,
  directory: string,
  contextFor: (moduleName: string) => Omit<HookModuleContext, 'emitter'>,
  hookTimeoutMs: number,
  reload: number,
): Promise<void> {
  const root = path.resolve(directory);
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new HookModuleError(root, `cannot read the hook modules folder: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const folders = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  for (const folder of folders) {
    const base = path.join(root, folder);
    let file: string | undefined;
    for (const name of entryNames) {
      if (await exists(path.join(base, name))) {
        file = path.join(base, name);
        break;
      }
    }
    if (file === undefined) {
      throw new HookModuleError(base, `no ${entryNames.join(', ')} in this folder`);
    }
    let isolation: ModuleIsolation;
    try {
      isolation = await readIsolation(base, hookTimeoutMs);
    } catch (error) {
      throw new HookModuleError(base, messageOf(error), { cause: error });
    }
    if (isolation.isolation === 'worker') {
      const context: HookModuleContext = {
        ...contextFor(folder),
        emitter: modules.emitter.forModule(folder),
      };
      await loadIsolated(modules, folder, file, isolation, context);
      modules.modules.push(file);
      continue;
    }
    let register: unknown;
    try {
      const loaded = (
        file.endsWith('.ts') ? await importTypeScript(file, reload) : await import(entryUrl(file, reload))
      ) as { default?: unknown };
      register = loaded.default;
      // A module compiled to CommonJS (tsx without "type": "module", tsc output) nests its default export.
      const nested = (register as { default?: unknown } | undefined)?.default;
      if (typeof register !== 'function' && typeof nested === 'function') register = nested;
    } catch (error) {
      if (error instanceof HookModuleError) throw error;
      throw new HookModuleError(file, `failed to load: ${messageOf(error)}`, { cause: error });
    }
    if (typeof register !== 'function') {
      throw new HookModuleError(file, 'the default export must be a register(hooks, context) function');
    }
    const context: HookModuleContext = { ...contextFor(folder), emitter: modules.emitter.forModule(folder) };
    try {
      await (register as HookModule)(registrarFor(modules, folder, context), context);
    } catch (error) {
      throw new HookModuleError(file, `register failed: ${messageOf(error)}`, { cause: error });
    }
    modules.modules.push(file);
  }
}

/**
 * Loads a module with `"isolation": "worker"` in its worker thread and registers, in the main thread, one proxy
 * per filter or action it registered there: each run is a message to the worker, bounded by the module's
 * timeout. What the module may not do there (init, schedule, routes) refuses start-up, naming it.
 */
async function loadIsolated(
  modules: HookModules,
  folder: string,
  file: string,
  settings: ModuleIsolation,
  context: HookModuleContext,
): Promise<void> {
  const isolated = new IsolatedModule(folder, file, settings, context);
  let registrations: readonly IsolatedRegistration[];
  try {
    registrations = await isolated.start();
  } catch (error) {
    await isolated.close();
    throw new HookModuleError(file, `register failed (isolation: worker): ${messageOf(error)}`, {
      cause: error,
    });
  }
  modules.closeOnStop(
    () => isolated.close(),
    (waitMs) => isolated.idle(waitMs),
  );
  const registrar = registrarFor(modules, folder, context);
  try {
    for (const [index, registration] of registrations.entries()) {
      const proxy = (payload: unknown, meta: unknown, handlerContext: HookModuleContext) =>
        isolated.run(index, payload, meta, handlerContext.args);
      // What the worker returns is checked by the registry as any filter's answer is.
      if (registration.kind === 'filter')
        registrar.filter(registration.event as UploadEventName, proxy as FilterHandler);
      else {
        const runOn = registration.runOn as RunOn | undefined;
        registrar.action(registration.event as UploadEventName, proxy, runOn !== undefined ? { runOn } : {});
      }
    }
  } catch (error) {
    await isolated.close();
    throw new HookModuleError(file, `register failed: ${messageOf(error)}`, { cause: error });
  }
}
