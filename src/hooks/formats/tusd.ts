import type { UploadEvent } from '../events.ts';
import { sortedRecord } from './sorted.ts';

/** `--hooks-format tusd`: tusd 1.x hook shape, as rustus sends it. */
export interface TusdPayload {
  HTTPRequest: {
    /** Every value of every header, in the order received (rustus kept only the last). */
    Header: Record<string, string[]>;
    Method: string;
    /** `tus-v1` or `ietf-draft` (Resumable Uploads for HTTP); absent for events no request caused. */
    Protocol?: 'tus-v1' | 'ietf-draft';
    RemoteAddr: string | null;
    URI: string;
  };
  Upload: {
    ID: string;
    IsFinal: boolean;
    IsPartial: boolean;
    MetaData: Record<string, string>;
    Offset: number;
    PartialUploads: string[] | null;
    Size: number | null;
    /** rustus derives this from the length being unknown, not from the stored deferred flag. */
    SizeIsDeferred: boolean;
    Storage: { Path: string | null; Type: string };
  };
  /**
   * The upload's event number ({@link UploadEvent.sequence}), spelled like tusd's fields; absent on `pre-*`
   * events. tusd 1.x receivers ignore fields they do not know.
   */
  Sequence?: number;
}

export function tusdPayload(event: UploadEvent): TusdPayload {
  const { request, upload } = event;
  return {
    HTTPRequest: {
      Header: sortedRecord(request.headers, (values) => (values.length === 0 ? undefined : [...values])),
      Method: request.method,
      ...(request.protocol === undefined ? {} : { Protocol: request.protocol }),
      RemoteAddr: request.remoteAddr,
      URI: request.uri,
    },
    Upload: {
      ID: upload.id,
      IsFinal: upload.isFinal,
      IsPartial: upload.isPartial,
      MetaData: sortedRecord(upload.metadata, (value) => value),
      Offset: upload.offset,
      PartialUploads: upload.parts === null ? null : [...upload.parts],
      Size: upload.length,
      SizeIsDeferred: upload.length === null,
      Storage: { Path: upload.path, Type: upload.storage },
    },
    ...(event.sequence === undefined ? {} : { Sequence: event.sequence }),
  };
}
