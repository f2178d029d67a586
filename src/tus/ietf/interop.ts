import type { IncomingMessage } from 'node:http';
import { parseSfInteger } from './fields.ts';

/**
 * The interop versions of draft-ietf-httpbis-resumable-upload Wharf speaks, and what changed between them.
 * A client names one in `Upload-Draft-Interop-Version` on every request; the draft bumps it on breaking changes.
 */
export const supportedInteropVersions = [3, 4, 5, 6, 7, 8] as const;
export type InteropVersion = (typeof supportedInteropVersions)[number];

/** How one interop version spells the protocol. */
export interface DraftRules {
  readonly version: InteropVersion;
  /** -00/-01 (interop 3) said `Upload-Incomplete` (true = more to come); later drafts `Upload-Complete`. */
  readonly completeField: 'upload-complete' | 'upload-incomplete';
  /** -04 on (interop 6): an append must be `Content-Type: application/partial-upload`. */
  readonly requiresPartialUploadType: boolean;
  /** -04 on (interop 6): limits are announced in `Upload-Limit`. */
  readonly announcesLimits: boolean;
  /** The `Upload-Limit` key of the remaining lifetime: `expires` in -04/-05, `max-age` from -06 (interop 7). */
  readonly lifetimeKey: 'expires' | 'max-age';
  /**
   * An append to a completed upload: -04 to -08 (interop 6, 7) answer 400 `completed-upload`; -09 on (interop 8)
   * make a non-empty one an inconsistent length (and the newest text lets an empty one replay the answer).
   */
  readonly completedAppend: 'completed-upload' | 'inconsistent-length';
}

export function draftRules(version: InteropVersion): DraftRules {
  return {
    version,
    completeField: version === 3 ? 'upload-incomplete' : 'upload-complete',
    requiresPartialUploadType: version >= 6,
    announcesLimits: version >= 6,
    lifetimeKey: version >= 7 ? 'max-age' : 'expires',
    completedAppend: version >= 8 ? 'inconsistent-length' : 'completed-upload',
  };
}

function isSupported(value: number): value is InteropVersion {
  return (supportedInteropVersions as readonly number[]).includes(value);
}

/**
 * Which protocol a request speaks: undefined without `Upload-Draft-Interop-Version` (tus 1.0), the version's
 * rules when Wharf speaks it, `'unsupported'` for any other value.
 */
export function requestedDraft(req: IncomingMessage): DraftRules | 'unsupported' | undefined {
  const header = req.headers['upload-draft-interop-version'];
  if (header === undefined) return undefined;
  const version = parseSfInteger(header);
  return version !== undefined && isSupported(version) ? draftRules(version) : 'unsupported';
}
