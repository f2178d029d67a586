import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterEach, before } from 'node:test';
import { closeNow, listenOnLoopback } from './loopback-server.ts';

/** One hook request as the receiver saw it. */
export interface ReceivedHook {
  /** The `Hook-Name` header. */
  readonly name: string;
  readonly headers: IncomingHttpHeaders;
  readonly payload: Record<string, unknown>;
  /** The body as received, byte for byte (what a signature covers). */
  readonly rawBody: Buffer;
  /** Whether the receiver has answered it yet (false while a slow answer is pending). */
  answered: boolean;
}

/** What the receiver answers to one hook; the default is 200 with an empty body. */
export interface HookAnswer {
  readonly status?: number;
  readonly body?: string;
  /** Holds the answer back this long (a slow hook target). */
  readonly delayMs?: number;
  /** Holds the answer back until this settles (a slow hook target the test releases), then `delayMs`. */
  readonly until?: Promise<unknown>;
  /** Extra response headers (`Retry-After`, `webhook-delivery`). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A real HTTP hook endpoint that records every call and answers as the test decides. */
export class HookReceiver {
  readonly received: ReceivedHook[] = [];
  /** Chooses the answer per call; replace it to change behaviour between tests. */
  answer: (hook: ReceivedHook) => HookAnswer = () => ({});
  readonly #server: Server;
  #port = 0;
  readonly #waiters = new Set<() => void>();

  constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const rawBody = Buffer.concat(chunks);
        const hook: ReceivedHook = {
          name: String(req.headers['hook-name'] ?? ''),
          headers: req.headers,
          payload: JSON.parse(rawBody.toString('utf8')) as Record<string, unknown>,
          rawBody,
          answered: false,
        };
        this.received.push(hook);
        for (const wake of this.#waiters) wake();
        const { status = 200, body = '', delayMs = 0, until, headers = {} } = this.answer(hook);
        const reply = () =>
          setTimeout(() => {
            hook.answered = true;
            res.writeHead(status, { 'Content-Type': 'text/plain', ...headers }).end(body);
          }, delayMs);
        if (until) void until.finally(reply);
        else reply();
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/hooks`;
  }

  async start(): Promise<void> {
    this.#port = await listenOnLoopback(this.#server);
  }

  close(): Promise<void> {
    return closeNow(this.#server);
  }

  /** Calls about one upload, in arrival order. */
  forUpload(id: string): ReceivedHook[] {
    return this.received.filter((hook) => uploadOf(hook.payload).id === id);
  }

  /** Waits until `predicate` holds over the calls received so far (hooks are asynchronous). */
  async waitUntil(predicate: (received: readonly ReceivedHook[]) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!predicate(this.received)) {
      if (Date.now() > deadline) {
        const seen = this.received.map((hook) => hook.name).join(', ');
        throw new Error(`hook receiver: gave up waiting for ${what}; received: ${seen}`);
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiters.delete(wake);
          resolve();
        };
        this.#waiters.add(wake);
        setTimeout(wake, 50);
      });
    }
  }

  /** Waits until the upload's calls include every name in `names` (with multiplicity). */
  async waitForNames(id: string, names: readonly string[]): Promise<ReceivedHook[]> {
    await this.waitUntil(
      (received) => {
        const seen = received.filter((hook) => uploadOf(hook.payload).id === id).map((hook) => hook.name);
        return names.every(
          (name) => seen.filter((s) => s === name).length >= names.filter((n) => n === name).length,
        );
      },
      `${names.join(', ')} of ${id}`,
    );
    return this.forUpload(id);
  }
}

/**
 * The upload of a payload: `upload` in default and v2, `Upload` in tusd (where the id is `ID`), `data.upload`
 * in a structured CloudEvent.
 */
export function uploadOf(
  payload: Record<string, unknown>,
): { id?: string | undefined } & Record<string, unknown> {
  const data = payload.data as Record<string, unknown> | undefined;
  const upload = (payload.upload ?? payload.Upload ?? data?.upload) as Record<string, unknown> | undefined;
  if (!upload) return {};
  return { ...upload, id: (upload.id ?? upload.ID) as string | undefined };
}

/** The request of a payload: `request` in default and v2, `HTTPRequest` in tusd. */
export function requestOf(payload: Record<string, unknown>): Record<string, unknown> {
  return (payload.request ?? payload.HTTPRequest ?? {}) as Record<string, unknown>;
}

/**
 * A hook receiver for one suite of a file whose suites run at once (started before the suite, its answers reset
 * after each test), so that a test that sets the answers never changes another suite's. Call it inside `describe`;
 * it joins `receivers`, which the file closes in a top-level `after` (once every suite stopped its servers, so no
 * kept-alive connection holds the close up).
 */
export function suiteReceiver(receivers: HookReceiver[]): HookReceiver {
  const receiver = new HookReceiver();
  receivers.push(receiver);
  before(() => receiver.start());
  afterEach(() => {
    receiver.answer = () => ({});
  });
  return receiver;
}
