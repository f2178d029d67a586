import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModuleEventListener, ModuleUploads } from './types.ts';

/** A module folder's `wharf-module.json`: how the module runs. */
export interface ModuleIsolation {
  readonly isolation: 'none' | 'worker';
  /** The worker's heap limit (V8's old generation), MB. */
  readonly memoryLimitMb: number;
  /** How long one run of a filter or action may take before its worker is terminated and replaced; ms. */
  readonly timeoutMs: number;
}

export const moduleManifestName = 'wharf-module.json';
const manifestKeys = ['isolation', 'memoryLimitMb', 'timeout'];
const defaultMemoryLimitMb = 128;

/**
 * Reads `wharf-module.json` of a module folder; none means in-process. `timeout` is in seconds (default: the
 * hook timeout, `--hooks-executable-timeout`). Throws a message naming the key for anything else.
 */
export async function readIsolation(folder: string, defaultTimeoutMs: number): Promise<ModuleIsolation> {
  let text: string;
  try {
    text = await readFile(path.join(folder, moduleManifestName), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      return { isolation: 'none', memoryLimitMb: defaultMemoryLimitMb, timeoutMs: defaultTimeoutMs };
    throw error;
  }
  const parsed = JSON.parse(text) as Record<string, unknown>;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new Error(`${moduleManifestName} must be a JSON object`);
  for (const key of Object.keys(parsed)) {
    if (!manifestKeys.includes(key))
      throw new Error(`${moduleManifestName}: unknown key "${key}" (expected ${manifestKeys.join(', ')})`);
  }
  const { isolation = 'none', memoryLimitMb = defaultMemoryLimitMb, timeout } = parsed;
  if (isolation !== 'none' && isolation !== 'worker')
    throw new Error(`${moduleManifestName}: isolation must be "none" or "worker"`);
  if (typeof memoryLimitMb !== 'number' || !Number.isInteger(memoryLimitMb) || memoryLimitMb < 8)
    throw new Error(`${moduleManifestName}: memoryLimitMb must be an integer of at least 8`);
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0)))
    throw new Error(`${moduleManifestName}: timeout must be a number of seconds above 0`);
  return {
    isolation,
    memoryLimitMb,
    timeoutMs: timeout === undefined ? defaultTimeoutMs : Math.round(timeout * 1000),
  };
}

/** What the module registered in its worker, in order (the index is the handler's number). */
export interface IsolatedRegistration {
  readonly kind: 'filter' | 'action';
  readonly event: string;
  readonly runOn?: string;
}

/** What the worker side of a module may reach in the main thread. */
export interface IsolatedContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly config: unknown;
  readonly uploads: ModuleUploads;
  readonly logger: {
    [level in 'info' | 'warn' | 'error' | 'debug']: (o: Record<string, unknown>, m?: string) => void;
  };
  readonly emitter: {
    emit(event: string, ...args: unknown[]): Promise<number>;
    on(event: string, listener: ModuleEventListener): () => void;
  };
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
  readonly message: Readonly<Record<string, unknown>>;
  /** The worker the run was sent to; undefined while it waits for one. */
  worker: Worker | undefined;
}

/** The worker entry, next to this file (dist/…/isolated-worker.js; isolated-worker.ts when run from source). */
const workerUrl = new URL(
  import.meta.url.endsWith('.ts') ? './isolated-worker.ts' : './isolated-worker.js',
  import.meta.url,
);

/** A copy that can cross to a worker: what structured clone refuses (functions, sockets) is left out. */
function cloneable(value: unknown): unknown {
  try {
    return structuredClone(value);
  } catch {
    try {
      return JSON.parse(JSON.stringify(value)) as unknown;
    } catch {
      return undefined;
    }
  }
}

/**
 * A hook module running in a worker thread with a heap limit. A run that outlives the timeout, a crash and an
 * out-of-memory end fail the runs waiting on the worker with a reason; the worker is then terminated and a new
 * one loads the module again for the next run. The server itself never stops for it.
 */
export class IsolatedModule {
  readonly #module: string;
  readonly #file: string;
  readonly #settings: ModuleIsolation;
  readonly #context: IsolatedContext;
  #worker: Worker | undefined;
  #ready: Promise<readonly IsolatedRegistration[]> | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextRun = 0;
  #closed = false;
  /** The main bus's forwarders to the current worker: removed when it is lost. */
  #listening: (() => void)[] = [];
  /** How many workers were lost and replaced. */
  replaced = 0;

  constructor(module: string, file: string, settings: ModuleIsolation, context: IsolatedContext) {
    this.#module = module;
    this.#file = file;
    this.#settings = settings;
    this.#context = context;
  }

  /** Starts the worker; resolves to what the module registered, or rejects with why it refused to load. */
  start(): Promise<readonly IsolatedRegistration[]> {
    if (this.#ready !== undefined) return this.#ready;
    const worker = new Worker(workerUrl, {
      workerData: {
        module: this.#module,
        file: this.#file,
        env: { ...this.#context.env },
        config: cloneable(this.#context.config),
      },
      resourceLimits: {
        maxOldGenerationSizeMb: this.#settings.memoryLimitMb,
        maxYoungGenerationSizeMb: Math.max(1, Math.min(16, Math.floor(this.#settings.memoryLimitMb / 4))),
      },
      stdout: false,
      stderr: false,
    });
    worker.unref();
    this.#worker = worker;
    const subscribed = new Set<string>();
    this.#ready = new Promise((resolve, reject) => {
      // A module whose loading never ends (a loop at its top level) must not hold start-up or the next run.
      const loading = setTimeout(() => {
        const reason = `did not finish loading within ${this.#settings.timeoutMs} ms`;
        reject(new Error(reason));
        this.#lost(worker, reason);
        void worker.terminate();
      }, this.#settings.timeoutMs);
      worker.on('message', (message: Record<string, unknown>) => {
        switch (message.type) {
          case 'registered':
            clearTimeout(loading);
            resolve(message.registrations as IsolatedRegistration[]);
            return;
          case 'refused':
            clearTimeout(loading);
            reject(new Error((message.error as { message: string }).message));
            return;
          case 'log': {
            const level = message.level as 'info' | 'warn' | 'error' | 'debug';
            this.#context.logger[level]?.(
              message.object as Record<string, unknown>,
              message.message as string,
            );
            return;
          }
          case 'subscribe': {
            const event = message.event as string;
            if (subscribed.has(event)) return;
            subscribed.add(event);
            const off = this.#context.emitter.on(event, (...args: unknown[]) => {
              if (this.#worker === worker)
                worker.postMessage({ type: 'emitted', event, args: cloneable(args) });
            });
            this.#listening.push(off);
            return;
          }
          case 'request':
            void this.#answer(worker, message);
            return;
          case 'done':
            this.#settle(message);
            return;
        }
      });
      worker.on('error', (error: Error) => {
        clearTimeout(loading);
        const code = (error as NodeJS.ErrnoException).code;
        const reason =
          code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? `ran out of memory (limit ${this.#settings.memoryLimitMb} MB)`
            : `crashed: ${error.message}`;
        reject(new Error(reason));
        this.#lost(worker, reason);
      });
      worker.on('exit', (exitCode) => {
        clearTimeout(loading);
        reject(new Error(`its worker exited with code ${exitCode} while loading`));
        this.#lost(worker, `its worker exited with code ${exitCode}`);
      });
    });
    return this.#ready;
  }

  /** Runs registered handler `index` with this payload; rejects with the handler's error or the worker's fate. */
  run(index: number, payload: unknown, meta: unknown, args: unknown): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error(`hook module ${this.#module}: closed`));
    const id = this.#nextRun++;
    const message = {
      type: 'run',
      id,
      index,
      payload: cloneable(payload),
      meta: cloneable(meta),
      args: cloneable(args),
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#timedOut(id), this.#settings.timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, message, worker: undefined });
      this.#dispatch(id);
    });
  }

  /** Sends a waiting run to the current worker, starting one when there is none. */
  #dispatch(id: number): void {
    this.start().then(
      () => {
        const pending = this.#pending.get(id);
        const worker = this.#worker;
        if (pending === undefined || pending.worker !== undefined) return;
        if (worker === undefined) {
          // The worker was lost between its start and now: try the next one.
          this.#dispatch(id);
          return;
        }
        pending.worker = worker;
        worker.postMessage(pending.message);
      },
      (error: unknown) => this.#fail(id, error instanceof Error ? error.message : String(error)),
    );
  }

  /**
   * A run past its timeout: it fails and its worker (stuck, or as good as) is terminated. The runs sent to that
   * worker before it fail with it; those sent after it (queued behind a stuck thread) go to the new worker.
   */
  #timedOut(id: number): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    const reason = `did not answer within ${this.#settings.timeoutMs} ms; its worker was terminated and replaced`;
    const worker = pending.worker;
    this.#fail(id, reason);
    if (worker === undefined || worker !== this.#worker) return;
    const younger: number[] = [];
    for (const [other, waiting] of this.#pending) {
      if (waiting.worker !== worker) continue;
      if (other < id) this.#fail(other, reason);
      else {
        waiting.worker = undefined;
        younger.push(other);
      }
    }
    this.#lost(worker, reason);
    void worker.terminate();
    for (const other of younger) this.#dispatch(other);
  }

  #fail(id: number, reason: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.reject(new Error(`hook module ${this.#module} (isolation: worker) ${reason}`));
  }

  /** Terminates the worker (shutdown); waiting runs fail. */
  /**
   * Resolves once no run waits on the worker (or after `waitMs`): a reload ends the replaced module's worker
   * after the runs it was given.
   */
  async idle(waitMs: number): Promise<void> {
    const until = Date.now() + waitMs;
    while (this.#pending.size > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    for (const id of [...this.#pending.keys()]) this.#fail(id, 'the server is stopping');
    if (worker !== undefined) {
      this.#lost(worker, 'the server is stopping');
      await worker.terminate();
    }
  }

  #settle(message: Record<string, unknown>): void {
    const pending = this.#pending.get(message.id as number);
    if (pending === undefined) return;
    this.#pending.delete(message.id as number);
    clearTimeout(pending.timer);
    const error = message.error as
      | { name?: string; message: string; status?: number; headers?: object }
      | undefined;
    if (error === undefined) {
      pending.resolve(message.value ?? undefined);
      return;
    }
    // A HookError's status and headers travel with it: the filter still refuses with them.
    const copy = Object.assign(new Error(error.message), {
      ...(error.name !== undefined ? { name: error.name } : {}),
      ...(error.status !== undefined ? { status: error.status } : {}),
      ...(error.headers !== undefined ? { headers: error.headers } : {}),
    });
    pending.reject(copy);
  }

  /** The worker is gone (or given up on): its runs fail with the reason, and the next run starts a new one. */
  #lost(worker: Worker, reason: string): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    this.#ready = undefined;
    for (const off of this.#listening.splice(0)) off();
    this.replaced++;
    for (const [id, pending] of this.#pending) if (pending.worker === worker) this.#fail(id, reason);
    if (!this.#closed)
      this.#context.logger.error(
        { module: this.#module, reason },
        'isolated hook module worker lost; a new one will load it',
      );
  }

  async #answer(worker: Worker, message: Record<string, unknown>): Promise<void> {
    const args = message.args as unknown[];
    let value: unknown;
    let error: string | undefined;
    try {
      const uploads = this.#context.uploads;
      switch (message.op) {
        case 'uploads.get':
          value = await uploads.get(String(args[0]));
          break;
        case 'uploads.delete':
          value = await uploads.delete(String(args[0]));
          break;
        case 'uploads.list': {
          const all: unknown[] = [];
          for await (const upload of uploads.list()) all.push(upload);
          value = all;
          break;
        }
        case 'emitter.emit':
          value = await this.#context.emitter.emit(String(args[0]), ...args.slice(1));
          break;
        default:
          error = `unknown request ${String(message.op)}`;
      }
    } catch (cause) {
      error = cause instanceof Error ? cause.message : String(cause);
    }
    if (this.#worker !== worker) return;
    worker.postMessage({
      type: 'answer',
      id: message.id,
      value: cloneable(value),
      ...(error !== undefined ? { error } : {}),
    });
  }
}
