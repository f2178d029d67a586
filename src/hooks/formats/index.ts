import type { UploadEvent } from '../events.ts';
import { defaultPayload, v2Payload } from './rustus.ts';
import { tusdPayload } from './tusd.ts';

export type { DefaultPayload, RustusUploadPayload, V2Payload } from './rustus.ts';
export type { TusdPayload } from './tusd.ts';

/** The payload formats of `--hooks-format`. */
export const hookFormatNames = ['default', 'v2', 'tusd'] as const;
export type HookFormatName = (typeof hookFormatNames)[number];

export function isHookFormatName(name: string): name is HookFormatName {
  return (hookFormatNames as readonly string[]).includes(name);
}

/** The payload object of one event in one format, before serialisation. */
export function buildPayload(format: HookFormatName, event: UploadEvent): object {
  switch (format) {
    case 'default':
      return defaultPayload(event);
    case 'v2':
      return v2Payload(event);
    case 'tusd':
      return tusdPayload(event);
  }
}

/**
 * The JSON text every target receives for one event. The engine builds it once per event and reuses it for
 * every target. Header values are kept whatever characters they hold (JSON.stringify escapes what it must).
 */
export function formatPayload(format: HookFormatName, event: UploadEvent): string {
  return JSON.stringify(buildPayload(format, event));
}
