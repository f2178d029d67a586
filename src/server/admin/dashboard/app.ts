/**
 * The admin dashboard: asks for the admin token (kept in sessionStorage, so it is gone with the tab), then
 * shows uploads in progress, recent events and their hook runs, failed deliveries and targets. Updates come
 * from the API's event stream; while the stream is down the page polls every second.
 */
import {
  AdminApi,
  type DeadLetter,
  type EventSummary,
  type TargetState,
  UnauthorizedError,
  type UploadSummary,
} from './api.ts';
import {
  eventRow,
  type FailedDelivery,
  failedDeliveries,
  failedDeliveryRow,
  fillTable,
  targetRow,
  uploadRow,
} from './render.ts';
import { type ServerSentEvent, ServerSentEventParser } from './sse.ts';

const tokenKey = 'wharf-admin-token';
const eventLimit = 50;
const pollIntervalMs = 1000;
const reconnectDelayMs = 3000;
/** The server sends a comment every 15 s: this long without a byte means the stream is dead. */
const streamIdleMs = 40_000;
/** While the stream is live, everything is reloaded this often anyway (a missed event heals). */
const resyncIntervalMs = 15_000;

function required<T extends HTMLElement>(id: string, type: new () => T): T {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`the page lacks #${id}`);
  return node;
}

const view = {
  tokenForm: required('token-form', HTMLFormElement),
  tokenInput: required('token', HTMLInputElement),
  tokenError: required('token-error', HTMLParagraphElement),
  dashboard: required('dashboard', HTMLDivElement),
  connection: required('connection', HTMLParagraphElement),
  signOut: required('sign-out', HTMLButtonElement),
  message: required('message', HTMLParagraphElement),
  problem: required('problem', HTMLParagraphElement),
  uploads: required('uploads-body', HTMLTableSectionElement),
  uploadsEmpty: required('uploads-empty', HTMLParagraphElement),
  failed: required('failed-body', HTMLTableSectionElement),
  failedEmpty: required('failed-empty', HTMLParagraphElement),
  events: required('events-body', HTMLTableSectionElement),
  eventsEmpty: required('events-empty', HTMLParagraphElement),
  targets: required('targets-body', HTMLTableSectionElement),
  targetsEmpty: required('targets-empty', HTMLParagraphElement),
};

function say(text: string): void {
  view.message.textContent = text;
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

class Dashboard {
  readonly #api: AdminApi;
  readonly #stopped = new AbortController();
  readonly #uploads = new Map<string, UploadSummary>();
  #events: EventSummary[] = [];
  #deadLetters: DeadLetter[] = [];
  #targets: TargetState[] = [];
  #poller: ReturnType<typeof setInterval> | undefined;
  #resync: ReturnType<typeof setInterval> | undefined;
  #refreshSoon: ReturnType<typeof setTimeout> | undefined;
  #refreshing: Promise<void> | undefined;

  constructor(token: string) {
    this.#api = new AdminApi(token);
  }

  /** Loads everything once (a refused token rejects), then follows the stream. */
  async start(): Promise<void> {
    try {
      await this.#refresh();
    } catch (error) {
      if (error instanceof UnauthorizedError) throw error;
      // The token may be right and the server briefly unreachable: keep it and retry below.
      this.#failed(error);
    }
    this.#resync = setInterval(() => this.#refreshQuietly(), resyncIntervalMs);
    void this.#follow();
  }

  stop(): void {
    this.#stopped.abort();
    clearInterval(this.#poller);
    clearInterval(this.#resync);
    clearTimeout(this.#refreshSoon);
  }

  /** Reloads after an action: a load already running may have started before the change, so wait it out. */
  async #refreshAfterChange(): Promise<void> {
    await this.#refreshing?.catch(() => undefined);
    return this.#refresh();
  }

  async #refresh(): Promise<void> {
    // One refresh at a time: a slow server must not pile up requests from the poller.
    this.#refreshing ??= this.#load().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  /** Loads the four lists; one that fails (e.g. a server without delivery control) leaves the others shown. */
  async #load(): Promise<void> {
    const [uploads, events, deadLetters, targets] = await Promise.allSettled([
      this.#api.uploadsInProgress(),
      this.#api.events(eventLimit),
      this.#api.deadLetters(),
      this.#api.targets(),
    ]);
    if (this.#stopped.signal.aborted) return;
    const problems: string[] = [];
    const take = <T>(result: PromiseSettledResult<T>, what: string, use: (value: T) => void): void => {
      if (result.status === 'fulfilled') use(result.value);
      else if (result.reason instanceof UnauthorizedError) throw result.reason;
      else problems.push(`${what}: ${reason(result.reason)}`);
    };
    take(uploads, 'uploads', (list) => {
      this.#uploads.clear();
      for (const upload of list) this.#uploads.set(upload.id, upload);
    });
    take(events, 'events', (list) => {
      this.#events = list;
    });
    take(deadLetters, 'dead letters', (list) => {
      this.#deadLetters = list;
    });
    take(targets, 'targets', (list) => {
      this.#targets = list;
    });
    view.problem.textContent = problems.length === 0 ? '' : `Could not load ${problems.join('; ')}`;
    this.#render();
  }

  #refreshQuietly(): void {
    this.#refresh().catch((error: unknown) => this.#failed(error));
  }

  /** Coalesces the reloads that a burst of stream events asks for. */
  #scheduleRefresh(): void {
    if (this.#refreshSoon !== undefined) return;
    this.#refreshSoon = setTimeout(() => {
      this.#refreshSoon = undefined;
      this.#refreshQuietly();
    }, 250);
  }

  #failed(error: unknown): void {
    if (this.#stopped.signal.aborted) return;
    if (error instanceof UnauthorizedError) {
      signOut('The token was refused; enter it again.');
      return;
    }
    view.problem.textContent = `Could not reach the admin API: ${reason(error)}`;
  }

  #render(): void {
    this.#renderUploads();
    const failed = failedDeliveries(this.#deadLetters, this.#events);
    fillTable(view.failed, view.failedEmpty, JSON.stringify(failed), () =>
      failed.map((delivery) => failedDeliveryRow(delivery, (row, button) => this.#resend(row, button))),
    );
    fillTable(view.events, view.eventsEmpty, JSON.stringify(this.#events), () => this.#events.map(eventRow));
    fillTable(view.targets, view.targetsEmpty, JSON.stringify(this.#targets), () =>
      this.#targets.map((target) =>
        targetRow(target, {
          setEnabled: (chosen, enabled, button) => this.#setEnabled(chosen, enabled, button),
          ping: (chosen, button) => this.#ping(chosen, button),
        }),
      ),
    );
  }

  #renderUploads(): void {
    const uploads = [...this.#uploads.values()].sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0));
    fillTable(view.uploads, view.uploadsEmpty, JSON.stringify(uploads), () => uploads.map(uploadRow));
  }

  #resend(delivery: FailedDelivery, button: HTMLButtonElement): void {
    button.disabled = true;
    this.#api
      .resend(delivery.eventId, delivery.target)
      .then((requeued) => {
        say(`Resent ${delivery.event} ${delivery.eventId} to ${delivery.target} (${requeued} queued).`);
        return this.#refreshAfterChange();
      })
      .catch((error: unknown) => {
        button.disabled = false;
        if (error instanceof UnauthorizedError) this.#failed(error);
        else say(`Resend failed: ${reason(error)}`);
      });
  }

  #setEnabled(target: TargetState, enabled: boolean, button: HTMLButtonElement): void {
    button.disabled = true;
    this.#api
      .setTargetEnabled(target.name, enabled)
      .then((state) => {
        say(`${state.name} is ${state.health}.`);
        return this.#refreshAfterChange();
      })
      .catch((error: unknown) => {
        button.disabled = false;
        if (error instanceof UnauthorizedError) this.#failed(error);
        else say(`Could not ${enabled ? 'enable' : 'disable'} ${target.name}: ${reason(error)}`);
      });
  }

  #ping(target: TargetState, button: HTMLButtonElement): void {
    button.disabled = true;
    say(`Pinging ${target.name}…`);
    this.#api
      .ping(target.name)
      .then((run) => {
        const detail = run.httpStatus !== undefined ? `, HTTP ${run.httpStatus}` : '';
        const error = run.error !== undefined ? `: ${run.error}` : '';
        say(`Ping ${target.name}: ${run.status}${detail} in ${Math.round(run.durationMs)} ms${error}`);
        return this.#refreshAfterChange();
      })
      .catch((error: unknown) => {
        if (error instanceof UnauthorizedError) this.#failed(error);
        else say(`Ping ${target.name} failed: ${reason(error)}`);
      })
      .finally(() => {
        button.disabled = false;
      });
  }

  /** Reads the event stream until the page stops; polls while it is down and reconnects after a pause. */
  async #follow(): Promise<void> {
    while (!this.#stopped.signal.aborted) {
      try {
        await this.#readStream();
      } catch (error) {
        if (error instanceof UnauthorizedError) {
          this.#failed(error);
          return;
        }
      }
      if (this.#stopped.signal.aborted) return;
      this.#startPolling();
      await new Promise((resolve) => setTimeout(resolve, reconnectDelayMs));
    }
  }

  async #readStream(): Promise<void> {
    const attempt = new AbortController();
    const stop = () => attempt.abort();
    this.#stopped.signal.addEventListener('abort', stop, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const stillAlive = () => {
      clearTimeout(idle);
      idle = setTimeout(stop, streamIdleMs);
    };
    try {
      stillAlive();
      const body = await this.#api.stream(attempt.signal);
      this.#stopPolling();
      // Whatever happened while the stream was down is loaded once; from now on events keep it current.
      this.#scheduleRefresh();
      const reader = body.getReader();
      const decoder = new TextDecoder();
      const parser = new ServerSentEventParser();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        stillAlive();
        for (const event of parser.push(decoder.decode(value, { stream: true }))) this.#onStreamEvent(event);
      }
    } finally {
      clearTimeout(idle);
      this.#stopped.signal.removeEventListener('abort', stop);
      attempt.abort();
    }
  }

  #onStreamEvent(event: ServerSentEvent): void {
    if (event.type === 'upload') {
      const upload = JSON.parse(event.data) as UploadSummary;
      if (upload.finished) this.#uploads.delete(upload.id);
      else this.#uploads.set(upload.id, upload);
      this.#renderUploads();
    } else if (event.type === 'run' || event.type === 'notice') {
      this.#scheduleRefresh();
    }
  }

  #startPolling(): void {
    if (this.#poller !== undefined) return;
    view.connection.textContent = 'Live updates unavailable: refreshing every second';
    this.#poller = setInterval(() => this.#refreshQuietly(), pollIntervalMs);
  }

  #stopPolling(): void {
    view.connection.textContent = 'Live';
    clearInterval(this.#poller);
    this.#poller = undefined;
  }
}

let current: Dashboard | undefined;

function showTokenForm(error: string): void {
  view.dashboard.hidden = true;
  view.signOut.hidden = true;
  view.tokenForm.hidden = false;
  view.tokenError.textContent = error;
  view.connection.textContent = 'Not signed in';
  view.tokenInput.focus();
}

function signOut(error = ''): void {
  current?.stop();
  current = undefined;
  sessionStorage.removeItem(tokenKey);
  showTokenForm(error);
}

async function open(token: string): Promise<void> {
  current?.stop();
  const dashboard = new Dashboard(token);
  current = dashboard;
  view.connection.textContent = 'Connecting…';
  try {
    await dashboard.start();
  } catch (error) {
    if (current === dashboard)
      signOut(error instanceof UnauthorizedError ? 'The token was refused.' : reason(error));
    return;
  }
  if (current !== dashboard) return;
  view.tokenForm.hidden = true;
  view.dashboard.hidden = false;
  view.signOut.hidden = false;
}

view.tokenForm.addEventListener('submit', (submitted) => {
  submitted.preventDefault();
  const token = view.tokenInput.value.trim();
  if (token === '') return;
  view.tokenInput.value = '';
  sessionStorage.setItem(tokenKey, token);
  void open(token);
});
view.signOut.addEventListener('click', () => signOut());

const saved = sessionStorage.getItem(tokenKey);
if (saved === null) showTokenForm('');
else void open(saved);
