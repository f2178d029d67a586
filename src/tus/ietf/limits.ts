import type { UploadRecord } from '../../uploads/upload.ts';
import type { TusSettings } from '../context.ts';
import { sfIntegerDictionary } from './fields.ts';
import type { DraftRules } from './interop.ts';

/**
 * `Upload-Limit` (draft "Limits"): `max-size` is --max-file-size, `max-append-size` is --max-body-size, the
 * remaining lifetime is the upload's expiry (or --upload-expiration before one exists). With no limit at all
 * the draft asks for `min-size=0` rather than an empty value.
 */
export function uploadLimit(
  settings: TusSettings,
  rules: DraftRules,
  upload: UploadRecord | undefined,
  now: number,
): string {
  const entries: Array<readonly [string, number]> = [];
  if (settings.maxFileSize > 0) entries.push(['max-size', settings.maxFileSize]);
  if ((settings.maxBodySize ?? 0) > 0) entries.push(['max-append-size', settings.maxBodySize ?? 0]);
  const expiresAt =
    upload === undefined
      ? settings.uploadExpirationMs > 0
        ? now + settings.uploadExpirationMs
        : null
      : upload.expiresAt;
  // Rounded: the lifetime is counted from this response, a few milliseconds after the expiry was set.
  if (expiresAt !== null) entries.push([rules.lifetimeKey, Math.round((expiresAt - now) / 1000)]);
  if (entries.length === 0) entries.push(['min-size', 0]);
  return sfIntegerDictionary(entries);
}
