import type { DeliveryResult, HookDelivery, HookTransport } from './types.ts';

/** How much of a hook's response body Wharf keeps (relayed to the client when a blocking hook rejects). */
export const responseBodyLimitBytes = 64 * 1024;

export interface HttpTransportOptions {
  readonly timeoutMs: number;
  /** Request headers copied to the hook request, by these names (first value only), as rustus does. */
  readonly proxyHeaders: readonly string[];
}

/** Reads at most `limit` bytes of a body, then cancels the rest. */
async function readCapped(body: ReadableStream<Uint8Array> | null, limit: number): Promise<string> {
  if (body === null) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      const kept = value.subarray(0, limit - size);
      chunks.push(kept);
      size += kept.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code === undefined ? `${error.message}: ${cause.message}` : `${error.message}: ${code}`;
  }
  return error.message;
}

/**
 * `--hooks-http-urls`: POST the payload to one URL with `Hook-Name`, `Idempotency-Key` (the event id, the same
 * for every URL of one event) and the proxied client headers. 2xx is success; redirects are followed.
 */
export class HttpHookTransport implements HookTransport {
  constructor(
    readonly url: string,
    readonly options: HttpTransportOptions,
  ) {}

  describe(): string {
    return `http:${this.url}`;
  }

  #headers(delivery: HookDelivery): Headers {
    const headers = new Headers({
      'Content-Type': 'application/json',
      'Hook-Name': delivery.hook,
      'Idempotency-Key': delivery.eventId,
    });
    for (const name of this.options.proxyHeaders) {
      const value = delivery.request.headers[name.toLowerCase()]?.[0];
      if (value === undefined) continue;
      try {
        headers.set(name, value);
      } catch {
        // A value fetch refuses to send (e.g. characters outside Latin-1) is left out rather than failing the hook.
      }
    }
    return headers;
  }

  async deliver(delivery: HookDelivery): Promise<DeliveryResult> {
    if (delivery.signal.aborted) return { kind: 'aborted' };
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const signal = AbortSignal.any([delivery.signal, timeout]);
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        headers: this.#headers(delivery),
        body: delivery.payload,
        signal,
        redirect: 'follow',
      });
      if (response.ok) {
        await response.body?.cancel().catch(() => {});
        return { kind: 'delivered', httpStatus: response.status };
      }
      const body = await readCapped(response.body, responseBodyLimitBytes);
      return {
        kind: 'responded',
        httpStatus: response.status,
        body,
        contentType: response.headers.get('content-type'),
      };
    } catch (error) {
      if (timeout.aborted) return { kind: 'timed_out', timeoutMs: this.options.timeoutMs };
      if (delivery.signal.aborted) return { kind: 'aborted' };
      return { kind: 'unreachable', detail: describeFetchError(error) };
    }
  }
}
