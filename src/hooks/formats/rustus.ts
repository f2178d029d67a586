import type { UploadEvent } from '../events.ts';
import { sortedRecord } from './sorted.ts';

/** The `upload` object shared by the `default` and `v2` formats. */
export interface RustusUploadPayload {
  created_at: number;
  deferred_size: boolean;
  id: string;
  is_final: boolean;
  is_partial: boolean;
  length: number | null;
  metadata: Record<string, string>;
  offset: number;
  parts: string[] | null;
  path: string | null;
  storage: string;
}

/** `--hooks-format default`: the request path is under `URI`. */
export interface DefaultPayload {
  request: {
    URI: string;
    headers: Record<string, string>;
    method: string;
    /** `tus-v1` or `ietf-draft`; absent for events no request caused. */
    protocol?: 'tus-v1' | 'ietf-draft';
    remote_addr: string | null;
  };
  upload: RustusUploadPayload;
  /** The upload's event number ({@link UploadEvent.sequence}); absent on `pre-*` events. */
  sequence?: number;
}

/** `--hooks-format v2`: identical to `default` except the request path is under `uri`. */
export interface V2Payload {
  request: {
    headers: Record<string, string>;
    method: string;
    /** `tus-v1` or `ietf-draft`; absent for events no request caused. */
    protocol?: 'tus-v1' | 'ietf-draft';
    remote_addr: string | null;
    uri: string;
  };
  upload: RustusUploadPayload;
  /** The upload's event number ({@link UploadEvent.sequence}); absent on `pre-*` events. */
  sequence?: number;
}

/** One value per header, the last one received, as rustus keeps them. */
function lastHeaderValues(headers: Readonly<Record<string, readonly string[]>>): Record<string, string> {
  return sortedRecord(headers, (values) => values.at(-1));
}

function uploadPayload(event: UploadEvent): RustusUploadPayload {
  const { upload } = event;
  return {
    created_at: Math.trunc(upload.createdAt),
    deferred_size: upload.deferredSize,
    id: upload.id,
    is_final: upload.isFinal,
    is_partial: upload.isPartial,
    length: upload.length,
    metadata: sortedRecord(upload.metadata, (value) => value),
    offset: upload.offset,
    parts: upload.parts === null ? null : [...upload.parts],
    path: upload.path,
    storage: upload.storage,
  };
}

export function defaultPayload(event: UploadEvent): DefaultPayload {
  const { request } = event;
  // Fields are set in their (sorted) order rather than spread into literals: a literal with a spread in it is
  // built in V8's slow path, and this runs for every event.
  const described: DefaultPayload['request'] = {
    URI: request.uri,
    headers: lastHeaderValues(request.headers),
    method: request.method,
  } as DefaultPayload['request'];
  if (request.protocol !== undefined) described.protocol = request.protocol;
  described.remote_addr = request.remoteAddr;
  const payload: DefaultPayload = { request: described, upload: uploadPayload(event) };
  // `sequence` at the top level, after `request` and `upload`: rustus's schemas do not forbid other fields (no
  // `additionalProperties: false`) and pydantic models ignore unknown ones, so rustus receivers are unaffected;
  // nor does `request.protocol` (`tus-v1` or `ietf-draft`, when known).
  if (event.sequence !== undefined) payload.sequence = event.sequence;
  return payload;
}

export function v2Payload(event: UploadEvent): V2Payload {
  const { request } = event;
  // In sorted order, without spreads (see defaultPayload).
  const described = {
    headers: lastHeaderValues(request.headers),
    method: request.method,
  } as V2Payload['request'];
  if (request.protocol !== undefined) described.protocol = request.protocol;
  described.remote_addr = request.remoteAddr;
  described.uri = request.uri;
  const payload: V2Payload = { request: described, upload: uploadPayload(event) };
  if (event.sequence !== undefined) payload.sequence = event.sequence;
  return payload;
}
