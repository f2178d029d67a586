import type { UploadEvent } from '../events.ts';

/**
 * `--hooks-format tusd-v2`: tusd 2's hook request, so a hook server written for tusd works unchanged.
 * Differs from `tusd` (the 1.x shape rustus sends) by the outer `Type`/`Event` envelope and by reporting the
 * request as tusd does: the URI as received, the peer's `host:port`, Go's header spelling with `Host`.
 */
export interface TusdV2Payload {
  Type: string;
  Event: {
    Upload: {
      ID: string;
      Size: number;
      SizeIsDeferred: boolean;
      Offset: number;
      MetaData: Record<string, string>;
      IsPartial: boolean;
      IsFinal: boolean;
      PartialUploads: string[] | null;
      /** null before the upload exists (pre-create), as in tusd. */
      Storage: Record<string, string> | null;
    };
    HTTPRequest: {
      Method: string;
      URI: string;
      RemoteAddr: string;
      /** Go's canonical header names (`Upload-Length`), every value per name in arrival order. */
      Header: Record<string, string[]>;
    };
  };
}

/** Go's canonical MIME header key: each dash-separated word capitalised, the rest lower case. */
export function canonicalHeaderName(name: string): string {
  return name
    .toLowerCase()
    .split('-')
    .map((word) => (word === '' ? word : word[0]?.toUpperCase() + word.slice(1)))
    .join('-');
}

/**
 * The request headers as a Go server hands them to tusd: `Transfer-Encoding` is consumed by the server and
 * `Host` holds the one host the request named. Keys are sorted so payloads are stable byte for byte.
 */
function goHeaders(headers: Readonly<Record<string, readonly string[]>>): Record<string, string[]> {
  const result = new Map<string, string[]>();
  for (const [name, values] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding' || lower === 'host' || values.length === 0) continue;
    const key = canonicalHeaderName(lower);
    result.set(key, [...(result.get(key) ?? []), ...values]);
  }
  const host = headers.host ?? headers.Host;
  if (host !== undefined && host.length > 0) result.set('Host', [host[0] ?? '']);
  const sorted: Record<string, string[]> = {};
  for (const key of [...result.keys()].sort()) sorted[key] = result.get(key) ?? [];
  return sorted;
}

/** tusd's storage description: filestore's binary path, s3store's object key; null before pre-create stored anything. */
function storageOf(storage: string, path: string | null): Record<string, string> | null {
  if (path === null) return null;
  if (storage === 'file_storage') return { Type: 'filestore', Path: path };
  if (storage === 's3' || storage === 's3_storage') return { Type: 's3store', Key: path };
  return { Type: storage, Path: path };
}

export function tusdV2Payload(event: UploadEvent): TusdV2Payload {
  const { request, upload } = event;
  const metadata: Record<string, string> = {};
  for (const key of Object.keys(upload.metadata).sort()) metadata[key] = upload.metadata[key] ?? '';
  return {
    Type: event.name,
    Event: {
      Upload: {
        // tusd runs pre-create before any id exists; a hook chooses one with ChangeFileInfo.ID.
        ID: event.name === 'pre-create' ? '' : upload.id,
        Size: upload.length ?? 0,
        SizeIsDeferred: upload.deferredSize,
        Offset: upload.offset,
        MetaData: metadata,
        IsPartial: upload.isPartial,
        IsFinal: upload.isFinal,
        PartialUploads: upload.parts === null ? null : [...upload.parts],
        Storage: event.name === 'pre-create' ? null : storageOf(upload.storage, upload.path),
      },
      HTTPRequest: {
        Method: request.method,
        URI: request.requestUri ?? request.uri,
        RemoteAddr: request.peer ?? request.remoteAddr ?? '',
        Header: goHeaders(request.headers),
      },
    },
  };
}
