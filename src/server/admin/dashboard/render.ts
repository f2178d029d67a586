/**
 * Builds the dashboard's tables. Every value from the API is set with textContent (through `append` of
 * strings, which makes text nodes): upload metadata, errors and outputs are untrusted input.
 */
import type { DeadLetter, EventSummary, RunRecord, RunStatus, TargetState, UploadSummary } from './api.ts';

type Child = Node | string;

/** Creates an element with text children only (no HTML parsing anywhere). */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Readonly<Record<string, string>> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : Number(value.toFixed(1))} ${units[unit]}`;
}

export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toLocaleString();
}

const statusLabels: Record<RunStatus, string> = {
  completed: 'completed',
  completed_with_warnings: 'completed with warnings',
  failed: 'failed',
  timed_out: 'timed out',
  running: 'running',
  pending: 'pending',
  skipped: 'skipped',
};

/** A status as a coloured badge; the word is always there, so colour is never the only signal. */
export function statusBadge(status: RunStatus): HTMLSpanElement {
  return element('span', { class: `badge status-${status}` }, statusLabels[status] ?? status);
}

/** The name a person gave the file, when the client sent one (tus clients use `filename` or `name`). */
function fileName(upload: UploadSummary): string {
  const name = upload.metadata.filename ?? upload.metadata.name;
  return typeof name === 'string' && name !== '' ? name : '(no name)';
}

export function uploadRow(upload: UploadSummary): HTMLTableRowElement {
  const percent = upload.progress === null ? undefined : Math.floor(upload.progress * 100);
  const bar = element('progress', {
    max: '100',
    'aria-label': `Progress of ${fileName(upload)} (${upload.id})`,
  });
  if (percent !== undefined) bar.value = percent;
  const size = upload.length === null ? 'length not known yet' : formatBytes(upload.length);
  return element(
    'tr',
    { 'data-upload-id': upload.id },
    element('td', {}, fileName(upload)),
    element('td', { class: 'mono' }, upload.id),
    element('td', {}, upload.endpoint),
    element(
      'td',
      { class: 'progress' },
      bar,
      ' ',
      element('span', { class: 'percent' }, percent === undefined ? '—' : `${percent} %`),
    ),
    element('td', { class: 'nowrap' }, `${formatBytes(upload.offset)} of ${size}`),
    element('td', {}, formatTime(upload.createdAt)),
  );
}

function runText(run: RunRecord): string {
  const parts = [run.target];
  if (run.attempt !== undefined) parts.push(`attempt ${run.attempt}`);
  if (run.httpStatus !== undefined) parts.push(`HTTP ${run.httpStatus}`);
  if (run.exitCode !== undefined) parts.push(`exit ${run.exitCode}`);
  if (run.status !== 'pending' && run.status !== 'running') parts.push(`${Math.round(run.durationMs)} ms`);
  return parts.join(' · ');
}

export function eventRow(event: EventSummary): HTMLTableRowElement {
  const runs = element('ul', { class: 'runs' });
  for (const run of event.runs) {
    const item = element(
      'li',
      { class: `run run-${run.status}` },
      statusBadge(run.status),
      ' ',
      runText(run),
    );
    if (run.error !== undefined && run.error !== `HTTP ${run.httpStatus}`)
      item.append(element('div', { class: 'error' }, run.error));
    runs.append(item);
  }
  return element(
    'tr',
    { 'data-event-id': event.eventId },
    element('td', {}, formatTime(event.at)),
    element('td', {}, event.event),
    element('td', { class: 'mono' }, event.uploadId),
    element('td', {}, statusBadge(event.status)),
    element('td', {}, runs),
  );
}

/** A delivery that did not succeed: dead-lettered, or failed with retries still scheduled. */
export interface FailedDelivery {
  readonly eventId: string;
  readonly event: string;
  readonly uploadId: string;
  readonly target: string;
  readonly state: string;
  readonly attempts: number;
  readonly lastError: string;
  readonly at: number;
}

export function failedDeliveries(
  deadLetters: readonly DeadLetter[],
  events: readonly EventSummary[],
): FailedDelivery[] {
  const rows: FailedDelivery[] = deadLetters.map((letter) => ({
    eventId: letter.eventId,
    event: letter.event,
    uploadId: letter.uploadId,
    target: letter.target,
    state: `dead-lettered (${letter.reason.replaceAll('_', ' ')})`,
    attempts: letter.attempts,
    lastError: letter.lastError,
    at: letter.deadAt,
  }));
  const dead = new Set(deadLetters.map((letter) => `${letter.eventId} ${letter.target}`));
  for (const event of events) {
    // The latest attempt per target decides: a failure followed by a success is not a failed delivery.
    const latest = new Map<string, RunRecord>();
    for (const run of event.runs) {
      if (run.blocking) continue;
      const seen = latest.get(run.target);
      const later =
        seen === undefined ||
        run.startedAt > seen.startedAt ||
        (run.startedAt === seen.startedAt && (run.attempt ?? 0) >= (seen.attempt ?? 0));
      if (later) latest.set(run.target, run);
    }
    for (const run of latest.values()) {
      if (run.status !== 'failed' && run.status !== 'timed_out') continue;
      if (dead.has(`${run.eventId} ${run.target}`)) continue;
      rows.push({
        eventId: run.eventId,
        event: run.event,
        uploadId: run.uploadId,
        target: run.target,
        state: run.status === 'failed' ? 'failed, will retry' : 'timed out, will retry',
        attempts: run.attempt ?? 1,
        lastError: run.error ?? (run.httpStatus !== undefined ? `HTTP ${run.httpStatus}` : ''),
        at: run.startedAt,
      });
    }
  }
  return rows.sort((a, b) => b.at - a.at);
}

export function failedDeliveryRow(
  delivery: FailedDelivery,
  onResend: (delivery: FailedDelivery, button: HTMLButtonElement) => void,
): HTMLTableRowElement {
  const button = element(
    'button',
    { type: 'button', 'aria-label': `Resend ${delivery.event} ${delivery.eventId} to ${delivery.target}` },
    'Resend',
  );
  button.addEventListener('click', () => onResend(delivery, button));
  return element(
    'tr',
    { 'data-event-id': delivery.eventId, 'data-target': delivery.target },
    element('td', {}, formatTime(delivery.at)),
    element('td', {}, delivery.event),
    element('td', { class: 'mono' }, delivery.uploadId),
    element('td', {}, delivery.target),
    element('td', {}, delivery.state),
    element('td', {}, String(delivery.attempts)),
    element('td', { class: 'error' }, delivery.lastError),
    element('td', {}, button),
  );
}

export interface TargetActions {
  setEnabled(target: TargetState, enabled: boolean, button: HTMLButtonElement): void;
  ping(target: TargetState, button: HTMLButtonElement): void;
}

export function targetRow(target: TargetState, actions: TargetActions): HTMLTableRowElement {
  const enabled = target.health !== 'disabled';
  const toggle = element(
    'button',
    { type: 'button', 'aria-label': `${enabled ? 'Disable' : 'Enable'} ${target.name}` },
    enabled ? 'Disable' : 'Enable',
  );
  toggle.addEventListener('click', () => actions.setEnabled(target, !enabled, toggle));
  const ping = element('button', { type: 'button', 'aria-label': `Ping ${target.name}` }, 'Ping');
  ping.addEventListener('click', () => actions.ping(target, ping));
  const health =
    target.health === 'disabled' && target.disabledReason !== undefined
      ? `disabled (${target.disabledReason})`
      : target.health;
  return element(
    'tr',
    { 'data-target': target.name },
    element('td', {}, target.name),
    element('td', {}, target.kind),
    element('td', {}, element('span', { class: `badge health-${target.health}` }, health)),
    element('td', {}, String(target.pending)),
    element('td', {}, String(target.deadLetters)),
    element('td', { class: 'error' }, target.lastError ?? ''),
    element('td', {}, formatTime(target.lastSuccessAt)),
    element('td', { class: 'actions' }, toggle, ' ', ping),
  );
}

/**
 * Replaces a table body's rows, unless the data is unchanged: rebuilding every second (polling) would
 * take the keyboard focus away from a button the user is on.
 */
export function fillTable(
  body: HTMLTableSectionElement,
  empty: HTMLElement,
  key: string,
  rows: () => HTMLTableRowElement[],
): void {
  if (body.dataset.key === key) return;
  body.dataset.key = key;
  const built = rows();
  body.replaceChildren(...built);
  empty.hidden = built.length > 0;
}
