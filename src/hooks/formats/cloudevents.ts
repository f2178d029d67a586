import type { UploadEvent } from '../events.ts';
import { v2Payload } from './rustus.ts';

/**
 * `--hooks-format cloudevents`: CloudEvents 1.0. In structured mode the body is the whole event (JSON event
 * format); in binary mode the body is `data` and the other attributes travel as protocol headers (see
 * cloudevents-bindings.ts for how each transport writes them).
 */

export const cloudEventsModes = ['structured', 'binary'] as const;
export type CloudEventsMode = (typeof cloudEventsModes)[number];

/** `--hooks-cloudevents-*`, resolved. */
export interface CloudEventsSettings {
  readonly mode: CloudEventsMode;
  /** `source` of every event; default the endpoint's URL as the client reached it. */
  readonly source?: string;
}

export const cloudEventTypePrefix = 'io.wharf.upload.';

/** The context attributes Wharf sets, all strings (as the HTTP, AMQP and Kafka bindings carry them). */
export interface CloudEventAttributes {
  readonly specversion: '1.0';
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly subject: string;
  readonly time: string;
  readonly datacontenttype: 'application/json';
  /**
   * Extension attribute: the upload's (the subject's) event number, {@link UploadEvent.sequence}; an Integer
   * (a JSON number in structured mode, its decimal text in binary-mode headers). Absent on `pre-*` events. Not
   * the documented `sequence` extension, which orders a whole source's events as lexically ordered strings.
   */
  readonly uploadsequence?: number;
}

/** The JSON event format of one event: the attributes and `data`. */
export interface CloudEvent<Data = CloudEventData> extends CloudEventAttributes {
  readonly data: Data;
}

/** `data`: the upload and the client request, as in `--hooks-format v2` (plus `hook` for named hooks). */
export type CloudEventData = Record<string, unknown>;

/**
 * How the transports send one event: structured needs only its media type; binary carries the attributes
 * (without `datacontenttype`, which is the message's content type). Kept with the delivery, also in the outbox.
 */
export type CloudEventEnvelope =
  | { readonly mode: 'structured' }
  | { readonly mode: 'binary'; readonly attributes: Readonly<Record<string, string>> };

/**
 * The default `source`: the endpoint's URL as the client reached it (scheme and host of the request, as for
 * Location headers, then the endpoint path), e.g. `https://files.example.com/files/`. Without a request origin
 * (the expiry sweep) it is the endpoint path alone, a URI-reference as the spec allows.
 */
export function defaultCloudEventSource(event: UploadEvent): string {
  const endpoint = `${event.endpoint ?? ''}/`;
  return event.request.origin === undefined ? endpoint : `${event.request.origin}${endpoint}`;
}

/** The attributes of one event; `time` is when the event was formatted, once for every target and retry. */
export function cloudEventAttributes(
  event: UploadEvent,
  eventId: string,
  settings: CloudEventsSettings,
  now: Date = new Date(),
): CloudEventAttributes {
  return {
    specversion: '1.0',
    id: eventId,
    source: settings.source ?? defaultCloudEventSource(event),
    type: `${cloudEventTypePrefix}${event.name}`,
    subject: event.upload.id,
    time: now.toISOString(),
    datacontenttype: 'application/json',
    ...(event.sequence === undefined ? {} : { uploadsequence: event.sequence }),
  };
}

/** `data`: v2's `upload` and `request`, with `extra` (a named hook's `hook` section) added. */
export function cloudEventData(
  event: UploadEvent,
  extra: Readonly<Record<string, unknown>> = {},
): CloudEventData {
  return { ...v2Payload(event), ...extra };
}

/** The body and the envelope of one event in the chosen mode. */
export function formatCloudEvent(
  event: UploadEvent,
  eventId: string,
  settings: CloudEventsSettings,
  extra: Readonly<Record<string, unknown>> = {},
): { payload: string; cloudEvent: CloudEventEnvelope } {
  const attributes = cloudEventAttributes(event, eventId, settings);
  const data = cloudEventData(event, extra);
  if (settings.mode === 'structured') {
    const structured: CloudEvent = { ...attributes, data };
    return { payload: JSON.stringify(structured), cloudEvent: { mode: 'structured' } };
  }
  const { datacontenttype: _contentType, uploadsequence, ...strings } = attributes;
  const headers: Record<string, string> =
    uploadsequence === undefined ? strings : { ...strings, uploadsequence: String(uploadsequence) };
  return { payload: JSON.stringify(data), cloudEvent: { mode: 'binary', attributes: headers } };
}

/** Whether `--hooks-cloudevents-source` is a usable URI-reference: an absolute URI or an absolute path. */
export function isCloudEventSource(value: string): boolean {
  // Printable ASCII only (a URI has no spaces or control characters; IRIs must be percent-encoded).
  if (!/^[\x21-\x7e]+$/.test(value)) return false;
  if (value.startsWith('/')) return true;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}
