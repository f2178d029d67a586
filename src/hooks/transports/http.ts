import type { Agent, IncomingMessage, OutgoingHttpHeaders, RequestOptions } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { urlToHttpOptions } from 'node:url';
import { Agent as HttpAgent, request as httpRequest, nodeHttps } from '../../node-http.ts';
import { AbortWatch } from './abort-watch.ts';
import { httpCloudEventHeaders } from './cloudevents-bindings.ts';
import { Http1Client, type Http1Target, http1Target } from './http1-client.ts';
import type { DeliveryResult, HookDelivery, HookTransport } from './types.ts';
import { webhookHeaders, webhookKeys } from './webhook-signature.ts';

/** How much of a hook's response body Wharf keeps (relayed to the client when a blocking hook rejects). */
export const responseBodyLimitBytes = 64 * 1024;

/** The largest response head (status line and headers) read from an `http:` target. */
const maxHeaderBytes = 64 * 1024;

/** A header of an answer as node:http gives it (a string; an array for a few names such as set-cookie). */
type AnswerHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** What a delivery reads of one answer, from either client. */
interface Answer {
  readonly status: number;
  readonly headers: AnswerHeaders;
  /** The body as UTF-8, at most {@link responseBodyLimitBytes} of it. */
  readonly text: string;
}

/** A header's first value (the receiver's `webhook-delivery`, Svix's delivery control, and the others). */
function headerOf(headers: AnswerHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'object' ? value[0] : value;
}

/** Redirects followed before the hook counts as unreachable (rustus's client follows them too). */
const maxRedirects = 5;

export interface HttpTransportOptions {
  readonly timeoutMs: number;
  /** Request headers copied to the hook request, by these names (first value only), as rustus does. */
  readonly proxyHeaders: readonly string[];
  /**
   * Standard Webhooks `whsec_` secrets, newest first: every request is signed with each of them
   * (`webhook-id`, `webhook-timestamp`, `webhook-signature`). None: requests are not signed.
   */
  readonly secrets?: readonly string[];
  /**
   * notify hooks: the request body and its headers built from the formatted payload (a chat message) instead
   * of the payload itself.
   */
  readonly render?: (payload: string) => {
    readonly headers: Readonly<Record<string, string>>;
    readonly body: string;
  };
}

/** Reads at most `limit` bytes of a response, then drops the connection rather than reading the rest. */
function readCapped(response: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => resolve(Buffer.concat(chunks).toString('utf8'));
    response.on('data', (chunk: Buffer) => {
      const kept = chunk.subarray(0, limit - size);
      chunks.push(kept);
      size += kept.length;
      if (size >= limit) {
        response.destroy();
        done();
      }
    });
    response.once('end', done);
    response.once('error', done);
    response.once('close', done);
  });
}

function describeRequestError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return code === undefined ? error.message : `${error.message} (${code})`;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

interface Attempt {
  readonly url: URL;
  readonly method: string;
  readonly headers: OutgoingHttpHeaders;
  /** A Buffer, not a string: Node writes the header block in the first chunk's encoding, and headers are Latin-1. */
  readonly body: Buffer | undefined;
}

/**
 * `--hooks-http-urls`: POST the payload to one URL with `Hook-Name`, `Idempotency-Key` (the event id, the same
 * for every URL of one event) and the proxied client headers. 2xx is success; redirects are followed.
 */
export class HttpHookTransport implements HookTransport {
  /**
   * Connections are kept alive between events: a new TCP connection (and TLS handshake) per hook would
   * cost more than the hook itself on a busy server. Idle sockets do not keep the process alive.
   * `http:` targets go through a small client over node:net (http1-client.ts: node:http's request and response
   * objects cost more CPU than the rest of a post event); `https:` ones through node:https.
   */
  readonly #http1 = new Http1Client({
    maxSockets: 64,
    maxHeaderBytes,
    bodyLimitBytes: responseBodyLimitBytes,
  });
  /** Made on the first request to a URL whose scheme is neither (node:http refuses it, as before). */
  #httpAgent: Agent | undefined;
  /** Made on the first https request: node:https (and tls) load only when a target needs them. */
  #httpsAgent: HttpsAgent | undefined;
  /** Exchanges in flight through the agents: a retired transport destroys them once none is. */
  #agentExchanges = 0;
  /** Set by keepConnections(false): connections are not kept between deliveries. */
  #retired = false;
  /** The HMAC keys of `options.secrets`, decoded once (a bad secret throws here, naming its position only). */
  readonly #signingKeys: readonly Buffer[];
  /** What to interrupt when a delivery's signal aborts. */
  readonly #aborts = new AbortWatch();
  /** The target's URL and its request options, parsed once rather than on every event. */
  readonly #target: URL;
  readonly #targetOptions: ReturnType<typeof urlToHttpOptions>;
  /** The target as the `http:` client takes it (undefined for an `https:` target). */
  readonly #http1Target: Http1Target | undefined;
  /** The proxied client headers: the only ones of the request it reads. */
  readonly requestHeaders: readonly string[];

  constructor(
    readonly url: string,
    readonly options: HttpTransportOptions,
  ) {
    this.#signingKeys = webhookKeys(options.secrets ?? [], 'HTTP hook secrets');
    this.requestHeaders = options.proxyHeaders.map((name) => name.toLowerCase());
    this.#target = new URL(url);
    this.#targetOptions = urlToHttpOptions(this.#target);
    this.#http1Target = this.#target.protocol === 'http:' ? http1Target(this.#target) : undefined;
  }

  describe(): string {
    return `http:${this.url}`;
  }

  /** Whether requests are signed (for target listings, which must never show the secrets themselves). */
  get signed(): boolean {
    return this.#signingKeys.length > 0;
  }

  #headers(delivery: HookDelivery): OutgoingHttpHeaders {
    const headers: OutgoingHttpHeaders = {};
    for (const name of this.options.proxyHeaders) {
      const value = delivery.request.headers[name.toLowerCase()]?.[0];
      // A value HTTP cannot carry (control characters, beyond Latin-1) is left out rather than failing the hook.
      if (value === undefined || !/^[\t\x20-\x7e\x80-\xff]*$/.test(value)) continue;
      headers[name] = value;
    }
    if (delivery.cloudEvent === undefined) headers['Content-Type'] = 'application/json';
    else Object.assign(headers, httpCloudEventHeaders(delivery.cloudEvent));
    headers['Hook-Name'] = delivery.hook;
    headers['Idempotency-Key'] = delivery.eventId;
    return headers;
  }

  async deliver(delivery: HookDelivery): Promise<DeliveryResult> {
    if (delivery.signal.aborted) return { kind: 'aborted' };
    // A timer and a listener rather than an AbortController per delivery: creating AbortSignals is costly in
    // Node 20 (it showed in the profile of small uploads with post hooks at about a third of a millisecond each).
    const stop = new Interruption();
    const timer = setTimeout(() => stop.interrupt('timeout'), this.options.timeoutMs);
    const stopWatching = this.#aborts.on(delivery.signal, () => stop.interrupt('closed'));
    try {
      const rendered = this.options.render?.(delivery.payload);
      const body = Buffer.from(rendered?.body ?? delivery.payload);
      // Added to one object rather than spread into a literal (V8's slow path, on every event).
      const headers = this.#headers(delivery);
      if (rendered?.headers !== undefined) Object.assign(headers, rendered.headers);
      // Signed per attempt: the timestamp is this attempt's, the id the event's (stable across retries).
      if (this.#signingKeys.length > 0)
        Object.assign(headers, webhookHeaders(this.#signingKeys, delivery.eventId, body));
      headers['Content-Length'] = body.length;
      let attempt: Attempt = { url: this.#target, method: 'POST', headers, body };
      for (let redirects = 0; ; redirects++) {
        const { status, headers: answered, text } = await this.#send(attempt, stop);
        const location = headerOf(answered, 'location');
        if (isRedirect(status) && location !== undefined && redirects < maxRedirects) {
          attempt = redirected(attempt, status, new URL(location, attempt.url));
          continue;
        }
        const control = headerOf(answered, 'webhook-delivery');
        if (status >= 200 && status <= 299) {
          return {
            kind: 'delivered',
            httpStatus: status,
            ...(text === '' ? {} : { answer: text }),
            ...(control === undefined ? {} : { webhookDelivery: control }),
          };
        }
        const retryAfter = headerOf(answered, 'retry-after');
        return {
          kind: 'responded',
          httpStatus: status,
          body: text,
          contentType: headerOf(answered, 'content-type') ?? null,
          ...(retryAfter === undefined ? {} : { retryAfter }),
          ...(control === undefined ? {} : { webhookDelivery: control }),
        };
      }
    } catch (error) {
      if (stop.reason === 'timeout') return { kind: 'timed_out', timeoutMs: this.options.timeoutMs };
      if (stop.reason === 'closed' || delivery.signal.aborted) return { kind: 'aborted' };
      return { kind: 'unreachable', detail: describeRequestError(error) };
    } finally {
      clearTimeout(timer);
      stopWatching();
    }
  }

  /**
   * One exchange, its answer read (to the end, so the connection goes back to the pool: a blocking hook may
   * answer JSON). The `http:` client sends a request again itself when the kept-alive connection it took had
   * been closed by the target. With node:https, such a request fails at once with ECONNRESET; it never reached
   * the target, so it is sent again once on a fresh connection (Node's documented way).
   */
  async #send(attempt: Attempt, stop: Interruption): Promise<Answer> {
    if (attempt.url.protocol === 'http:') return this.#exchangeHttp1(attempt, stop);
    this.#agentExchanges++;
    try {
      return await this.#sendThroughAgent(attempt, stop);
    } finally {
      this.#agentExchanges--;
      if (this.#retired && this.#agentExchanges === 0) this.#destroyAgents();
    }
  }

  async #sendThroughAgent(attempt: Attempt, stop: Interruption): Promise<Answer> {
    try {
      return await this.#exchange(attempt, stop);
    } catch (error) {
      if ((error as { reusedSocket?: boolean }).reusedSocket && stop.reason === undefined) {
        return this.#exchange(attempt, stop);
      }
      throw error;
    }
  }

  async #exchangeHttp1(attempt: Attempt, stop: Interruption): Promise<Answer> {
    if (stop.reason !== undefined) throw new Error(`hook request interrupted (${stop.reason})`);
    const target = attempt.url === this.#target ? this.#http1Target : undefined;
    const exchange = this.#http1.request(
      target ?? http1Target(attempt.url),
      attempt.method,
      attempt.headers,
      attempt.body,
    );
    stop.watch(exchange);
    const { status, headers, body } = await exchange.response;
    return { status, headers, text: body.toString('utf8') };
  }

  /**
   * Closes the kept-alive connections (idle ones at once, those of requests in flight when they end): idle
   * sockets do not keep the process alive, but a library caller that closed Wharf would otherwise leave them open
   * at the target until its own keep-alive timeout, or for ever with a target that sets none.
   */
  async close(): Promise<void> {
    this.#http1.close();
    this.#destroyAgents();
  }

  /**
   * false for a named hook replaced (a reload, an admin API change): its idle connections close now, those in
   * use once their delivery ends (an https one: once no exchange through the agents is in flight, as an agent's
   * destroy ends those in use too). A request that started with the replaced hooks still delivers, on a
   * connection that is then dropped. true when it is used again: connections are kept again.
   */
  keepConnections(keep: boolean): void {
    this.#retired = !keep;
    if (keep) {
      this.#http1.reopen();
      return;
    }
    this.#http1.close();
    if (this.#agentExchanges === 0) this.#destroyAgents();
  }

  #destroyAgents(): void {
    this.#httpAgent?.destroy();
    this.#httpsAgent?.destroy();
  }

  /** The request function and kept-alive agent of a scheme; the first https request loads node:https. */
  #client(secure: boolean): { send: typeof httpRequest; agent: Agent } {
    if (!secure) {
      this.#httpAgent ??= new HttpAgent({ keepAlive: true, maxSockets: 64 });
      return { send: httpRequest, agent: this.#httpAgent };
    }
    const https = nodeHttps();
    this.#httpsAgent ??= new https.Agent({ keepAlive: true, maxSockets: 64 });
    return { send: https.request, agent: this.#httpsAgent };
  }

  /** One exchange through node:https (or node:http for a scheme it refuses). */
  async #exchange(attempt: Attempt, stop: Interruption): Promise<Answer> {
    const response = await this.#request(attempt, stop);
    const text = await readCapped(response, responseBodyLimitBytes);
    if (stop.reason !== undefined) throw new Error(`hook request interrupted (${stop.reason})`);
    return { status: response.statusCode ?? 0, headers: response.headers, text };
  }

  #request(attempt: Attempt, stop: Interruption): Promise<IncomingMessage> {
    const { send, agent } = this.#client(attempt.url.protocol === 'https:');
    return new Promise((resolve, reject) => {
      if (stop.reason !== undefined) {
        reject(new Error(`hook request interrupted (${stop.reason})`));
        return;
      }
      const options: RequestOptions = Object.assign(
        {},
        attempt.url === this.#target ? this.#targetOptions : urlToHttpOptions(attempt.url),
      );
      options.method = attempt.method;
      options.headers = attempt.headers;
      options.agent = agent;
      const request = send(options, resolve);
      stop.watch(request);
      request.once('error', (error: Error) => {
        const code = (error as NodeJS.ErrnoException).code;
        if (request.reusedSocket && code === 'ECONNRESET') Object.assign(error, { reusedSocket: true });
        reject(error);
      });
      request.end(attempt.body);
    });
  }
}

/** Why a delivery was cut short, and the request in flight to destroy when it is. */
class Interruption {
  reason: 'timeout' | 'closed' | undefined;
  #request: { destroy(error: Error): void } | undefined;

  watch(request: { destroy(error: Error): void }): void {
    this.#request = request;
  }

  interrupt(reason: 'timeout' | 'closed'): void {
    this.reason ??= reason;
    this.#request?.destroy(new Error(`hook request interrupted (${reason})`));
  }
}

/** The next request of a redirect chain, with fetch's rules: 303 (and 301/302 after POST) become a GET. */
function redirected(previous: Attempt, status: number, url: URL): Attempt {
  if (status === 307 || status === 308) return { ...previous, url };
  const { 'Content-Length': _length, 'Content-Type': _type, ...headers } = previous.headers;
  return { url, method: 'GET', headers, body: undefined };
}
