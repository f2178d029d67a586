import { randomUUID } from 'node:crypto';
import type { UploadEvent } from '../events.ts';
import {
  type CloudEventEnvelope,
  type CloudEventsSettings,
  cloudEventAttributes,
  cloudEventData,
  formatCloudEvent,
} from './cloudevents.ts';
import { defaultPayload, v2Payload } from './rustus.ts';
import { tusdPayload } from './tusd.ts';
import { tusdV2Payload } from './tusd-v2.ts';

export type {
  CloudEvent,
  CloudEventAttributes,
  CloudEventData,
  CloudEventEnvelope,
  CloudEventsMode,
  CloudEventsSettings,
} from './cloudevents.ts';
export type { DefaultPayload, RustusUploadPayload, V2Payload } from './rustus.ts';
export type { TusdPayload } from './tusd.ts';
export type { TusdV2Payload } from './tusd-v2.ts';

/** The formats rustus has (their JSON schemas are in rustus's documentation). */
export const rustusHookFormatNames = ['default', 'v2', 'tusd'] as const;

/** The payload formats of `--hooks-format`. */
export const hookFormatNames = [...rustusHookFormatNames, 'cloudevents', 'tusd-v2'] as const;
export type HookFormatName = (typeof hookFormatNames)[number];

export function isHookFormatName(name: string): name is HookFormatName {
  return (hookFormatNames as readonly string[]).includes(name);
}

/** Structured mode with the default source: what `cloudevents` means when nothing else is said. */
const defaultCloudEvents: CloudEventsSettings = { mode: 'structured' };

/**
 * The payload object of one event in one format, before serialisation. For `cloudevents` this is the
 * structured event; its `id` is `eventId` (a fresh UUID when not given).
 */
export function buildPayload(format: HookFormatName, event: UploadEvent, eventId?: string): object {
  switch (format) {
    case 'default':
      return defaultPayload(event);
    case 'v2':
      return v2Payload(event);
    case 'tusd':
      return tusdPayload(event);
    case 'tusd-v2':
      return tusdV2Payload(event);
    case 'cloudevents':
      return {
        ...cloudEventAttributes(event, eventId ?? randomUUID(), defaultCloudEvents),
        data: cloudEventData(event),
      };
  }
}

/**
 * The JSON text every target receives for one event. The engine builds it once per event and reuses it for
 * every target. Header values are kept whatever characters they hold (JSON.stringify escapes what it must).
 */
export function formatPayload(format: HookFormatName, event: UploadEvent, eventId?: string): string {
  return JSON.stringify(buildPayload(format, event, eventId));
}

/** One event formatted for its targets: the body, and for CloudEvents how the transports must send it. */
export interface FormattedEvent {
  readonly payload: string;
  readonly cloudEvent?: CloudEventEnvelope;
}

/** What formatting needs besides the event. */
export interface FormatContext {
  readonly eventId: string;
  /** `--hooks-cloudevents-*`; default structured mode with the endpoint URL as source. */
  readonly cloudEvents?: CloudEventsSettings;
}

/**
 * Formats one event, with `extra` fields (a named hook's `hook` section) added at the top of the payload, or
 * to `data` for CloudEvents (an event's own attributes must be scalars).
 */
export function formatEvent(
  format: HookFormatName,
  event: UploadEvent,
  context: FormatContext,
  extra?: Readonly<Record<string, unknown>>,
): FormattedEvent {
  if (format === 'cloudevents') {
    return formatCloudEvent(event, context.eventId, context.cloudEvents ?? defaultCloudEvents, extra);
  }
  const payload = buildPayload(format, event);
  return { payload: JSON.stringify(extra === undefined ? payload : { ...payload, ...extra }) };
}
