import type { ModuleEmitter, ModuleEventListener, ModuleLogger } from './types.ts';

interface Listening {
  /** The module that registered the listener, for the log line of its failure. */
  readonly module: string;
  readonly listener: ModuleEventListener;
  readonly once: boolean;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The event bus every hook module of one process shares (`context.emitter`, as Directus's emitter): modules
 * talk to each other by event name. A listener's failure (a throw or a rejected promise) is logged with the
 * listening module's name and never reaches the emitting module. {@link ModuleEventBus.close} removes every
 * listener at shutdown; a module may remove its own earlier with the disposer `on`/`once` return.
 */
export class ModuleEventBus {
  readonly #listeners = new Map<string, Listening[]>();
  readonly #logger: ModuleLogger;
  #closed = false;

  constructor(logger: ModuleLogger) {
    this.#logger = logger;
  }

  /** The emitter one module sees: its listeners carry its name. */
  forModule(module: string): ModuleEmitter {
    return {
      emit: (event, ...args) => this.#emit(String(event), args),
      on: (event, listener) => this.#add(module, String(event), listener, false),
      once: (event, listener) => this.#add(module, String(event), listener, true),
      off: (event, listener) => this.#remove(String(event), (entry) => entry.listener === listener),
    };
  }

  /** How many listeners wait for `event`. */
  listenerCount(event: string): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Removes every listener and refuses new ones (shutdown). */
  close(): void {
    this.#closed = true;
    this.#listeners.clear();
  }

  #add(module: string, event: string, listener: ModuleEventListener, once: boolean): () => void {
    if (typeof listener !== 'function')
      throw new TypeError(`emitter.on("${event}") needs a listener function`);
    if (this.#closed) return () => {};
    const entry: Listening = { module, listener, once };
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), entry]);
    return () => {
      this.#remove(event, (other) => other === entry);
    };
  }

  /** Removes the first listener that matches; true when there was one. */
  #remove(event: string, matches: (entry: Listening) => boolean): boolean {
    const entries = this.#listeners.get(event);
    const index = entries?.findIndex(matches) ?? -1;
    if (entries === undefined || index < 0) return false;
    const rest = entries.filter((_, position) => position !== index);
    if (rest.length === 0) this.#listeners.delete(event);
    else this.#listeners.set(event, rest);
    return true;
  }

  /**
   * Calls the listeners registered when the emit starts, in registration order, each with the arguments;
   * resolves with how many ran once every one has settled. Never rejects.
   */
  #emit(event: string, args: readonly unknown[]): Promise<number> {
    const entries = this.#listeners.get(event) ?? [];
    for (const entry of entries) if (entry.once) this.#remove(event, (other) => other === entry);
    const settled = entries.map((entry) => {
      try {
        return Promise.resolve(entry.listener(...args)).catch((error: unknown) =>
          this.#failed(entry, event, error),
        );
      } catch (error) {
        this.#failed(entry, event, error);
        return Promise.resolve();
      }
    });
    return Promise.all(settled).then(() => entries.length);
  }

  #failed(entry: Listening, event: string, error: unknown): void {
    this.#logger.error(
      { err: error, module: entry.module, event, error: messageOf(error) },
      'hook module event listener failed',
    );
  }
}
