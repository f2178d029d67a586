/**
 * The worker thread of a hook module with `"isolation": "worker"` (see isolation.ts): loads the module, tells
 * the main thread what it registered, and runs its filters and actions when asked. What cannot cross a thread
 * boundary (custom routes, init and schedule handlers, `uploads.read` streams) is refused, naming the module.
 */

import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

interface Data {
  readonly module: string;
  readonly file: string;
  readonly env: Record<string, string | undefined>;
  readonly config: unknown;
}

type Handler = (...args: unknown[]) => unknown;

const data = workerData as Data;
const port = parentPort;
if (port === null) throw new Error('isolated-worker.ts runs in a worker thread only');

const handlers: Handler[] = [];
const registrations: { kind: 'filter' | 'action'; event: string; runOn?: string }[] = [];
const listeners = new Map<string, Set<Handler>>();
let nextRequest = 0;
const requests = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

function ask(op: string, ...args: unknown[]): Promise<unknown> {
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    requests.set(id, { resolve, reject });
    port?.postMessage({ type: 'request', id, op, args });
  });
}

function unavailable(what: string): Error {
  return new Error(
    `hook module ${data.module}: ${what} is not available with "isolation": "worker" (it cannot cross a thread boundary)`,
  );
}

function log(level: string) {
  return (object: Record<string, unknown>, message?: string) => {
    let safe: unknown = object;
    try {
      safe = structuredClone(object);
    } catch {
      safe = { note: 'log fields could not be copied out of the worker' };
    }
    port?.postMessage({ type: 'log', level, object: safe, message });
  };
}

function contextWith(args: Record<string, unknown>) {
  return {
    logger: { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') },
    config: data.config,
    env: data.env,
    args,
    uploads: {
      get: (id: string) => ask('uploads.get', id),
      delete: (id: string) => ask('uploads.delete', id),
      list: async function* () {
        const all = (await ask('uploads.list')) as unknown[];
        yield* all;
      },
      read: () => Promise.reject(unavailable('context.uploads.read (a stream)')),
    },
    emitter: {
      emit: (event: string, ...args: unknown[]) => ask('emitter.emit', event, ...args),
      on(event: string, listener: Handler) {
        let set = listeners.get(event);
        if (set === undefined) {
          set = new Set();
          listeners.set(event, set);
          port?.postMessage({ type: 'subscribe', event });
        }
        set.add(listener);
        return () => set.delete(listener);
      },
      once(event: string, listener: Handler) {
        const off = this.on(event, (...args: unknown[]) => {
          off();
          return listener(...args);
        });
        return off;
      },
      off: (event: string, listener: Handler) => listeners.get(event)?.delete(listener) ?? false,
    },
  };
}

const registrar = {
  filter(event: string, handler: Handler) {
    if (typeof handler !== 'function') throw new TypeError('filter needs a handler function');
    registrations.push({ kind: 'filter', event: String(event) });
    handlers.push(handler);
  },
  action(event: string, handler: Handler, options?: { runOn?: string }) {
    if (typeof handler !== 'function') throw new TypeError('action needs a handler function');
    registrations.push({
      kind: 'action',
      event: String(event),
      ...(options?.runOn !== undefined ? { runOn: options.runOn } : {}),
    });
    handlers.push(handler);
  },
  init(event: string) {
    throw unavailable(`init("${String(event)}")`);
  },
  schedule() {
    throw unavailable('schedule()');
  },
};

function errorOf(error: unknown) {
  if (!(error instanceof Error)) return { message: String(error) };
  const { status, headers } = error as Error & { status?: unknown; headers?: unknown };
  return {
    name: error.name,
    message: error.message,
    ...(typeof status === 'number' ? { status } : {}),
    ...(typeof headers === 'object' && headers !== null ? { headers: { ...headers } } : {}),
  };
}

port.on('message', (message: Record<string, unknown>) => {
  if (message.type === 'answer') {
    const request = requests.get(message.id as number);
    requests.delete(message.id as number);
    if (message.error !== undefined) request?.reject(new Error(String(message.error)));
    else request?.resolve(message.value);
    return;
  }
  if (message.type === 'emitted') {
    for (const listener of [...(listeners.get(message.event as string) ?? [])]) {
      Promise.resolve()
        .then(() => listener(...(message.args as unknown[])))
        .catch((error: unknown) => log('error')({ err: errorOf(error) }, 'emitter listener failed'));
    }
    return;
  }
  if (message.type === 'run') {
    const handler = handlers[message.index as number];
    const context = contextWith((message.args as Record<string, unknown>) ?? {});
    Promise.resolve()
      .then(() => handler?.(message.payload, message.meta, context))
      .then(
        (value) => {
          try {
            port.postMessage({ type: 'done', id: message.id, value: value ?? null });
          } catch {
            port.postMessage({
              type: 'done',
              id: message.id,
              error: { message: 'the handler returned a value that cannot be copied out of the worker' },
            });
          }
        },
        (error: unknown) => port.postMessage({ type: 'done', id: message.id, error: errorOf(error) }),
      );
  }
});

async function load(): Promise<unknown> {
  if (data.file.endsWith('.ts')) {
    const specifier = 'tsx/esm/api';
    const tsx = (await import(specifier)) as {
      tsImport: (specifier: string, parent: string) => Promise<unknown>;
    };
    return tsx.tsImport(pathToFileURL(data.file).href, import.meta.url);
  }
  return import(pathToFileURL(data.file).href);
}

try {
  const loaded = (await load()) as { default?: unknown };
  let register = loaded.default;
  const nested = (register as { default?: unknown } | undefined)?.default;
  if (typeof register !== 'function' && typeof nested === 'function') register = nested;
  if (typeof register !== 'function')
    throw new Error('the default export must be a register(hooks, context) function');
  await (register as Handler)(registrar, contextWith({}));
  port.postMessage({ type: 'registered', registrations });
} catch (error) {
  port.postMessage({ type: 'refused', error: errorOf(error) });
}
