import type { DeadLetter, EventSummary, RunRecord, TargetState, UploadSummary } from './shapes.ts';

export type { DeadLetter, EventSummary, RunRecord, RunStatus, TargetState, UploadSummary } from './shapes.ts';

/** The server refused the token (401): the page asks for it again. */
export class UnauthorizedError extends Error {
  constructor() {
    super('the admin token was refused');
    this.name = 'UnauthorizedError';
  }
}

/** Any other failed call, with the server's `{"error"}` message when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

const base = '/admin/api';

/** Calls the admin API with the bearer token; every request goes through here. */
export class AdminApi {
  readonly #token: string;

  constructor(token: string) {
    this.#token = token;
  }

  get headers(): Record<string, string> {
    return { Authorization: `Bearer ${this.#token}` };
  }

  async #call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { ...this.headers, Accept: 'application/json' };
    // Every write is JSON, even one with nothing to say: without an admin token the server refuses writes of
    // any other type (a cross-site page could send those without a preflight).
    const sent = method === 'POST' ? JSON.stringify(body ?? {}) : undefined;
    if (sent !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`${base}${path}`, {
      method,
      headers,
      cache: 'no-store',
      // Same origin only: the server refuses other sites, and the token never goes anywhere else.
      mode: 'same-origin',
      credentials: 'omit',
      ...(sent !== undefined ? { body: sent } : {}),
    });
    if (response.status === 401) throw new UnauthorizedError();
    const text = await response.text();
    const parsed: unknown = text === '' ? {} : JSON.parse(text);
    if (!response.ok) {
      const message =
        typeof parsed === 'object' && parsed !== null && 'error' in parsed
          ? String(parsed.error)
          : `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message);
    }
    return parsed as T;
  }

  async uploadsInProgress(): Promise<UploadSummary[]> {
    const reply = await this.#call<{ uploads: UploadSummary[] }>(
      'GET',
      '/uploads?state=in_progress&limit=100',
    );
    return reply.uploads;
  }

  async events(limit: number): Promise<EventSummary[]> {
    const reply = await this.#call<{ events: EventSummary[] }>('GET', `/events?limit=${limit}`);
    return reply.events;
  }

  async deadLetters(): Promise<DeadLetter[]> {
    const reply = await this.#call<{ deadLetters: DeadLetter[] }>('GET', '/dead-letters');
    return reply.deadLetters;
  }

  async targets(): Promise<TargetState[]> {
    const reply = await this.#call<{ targets: TargetState[] }>('GET', '/targets');
    return reply.targets;
  }

  async resend(eventId: string, target: string): Promise<number> {
    const reply = await this.#call<{ requeued: number }>(
      'POST',
      `/events/${encodeURIComponent(eventId)}/resend`,
      { target },
    );
    return reply.requeued;
  }

  setTargetEnabled(target: string, enabled: boolean): Promise<TargetState> {
    const action = enabled ? 'enable' : 'disable';
    return this.#call<TargetState>('POST', `/targets/${encodeURIComponent(target)}/${action}`);
  }

  ping(target: string): Promise<RunRecord> {
    return this.#call<RunRecord>('POST', `/targets/${encodeURIComponent(target)}/ping`);
  }

  /** Opens the live stream (`text/event-stream`); the caller reads the body and aborts with `signal`. */
  async stream(signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const response = await fetch(`${base}/stream`, {
      headers: { ...this.headers, Accept: 'text/event-stream' },
      cache: 'no-store',
      mode: 'same-origin',
      credentials: 'omit',
      signal,
    });
    if (response.status === 401) throw new UnauthorizedError();
    if (!response.ok || response.body === null)
      throw new ApiError(response.status, 'the stream did not open');
    return response.body;
  }
}
