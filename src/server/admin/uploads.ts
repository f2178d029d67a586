import { WharfError } from '../../errors.ts';
import { isComplete, type UploadRecord } from '../../info/upload-record.ts';
import type { UploadService } from '../../uploads/service.ts';

/** An upload as the admin API shows it. */
export interface UploadSummary {
  readonly id: string;
  /** The endpoint's base path, e.g. `/files`. */
  readonly endpoint: string;
  readonly offset: number;
  readonly length: number | null;
  /** 0..1; null while the length is deferred. */
  readonly progress: number | null;
  readonly finished: boolean;
  readonly createdAt: number | null;
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * Why the upload failed, null when it did not: a pre-finish hook refused it, or (a final upload) a part is
   * gone or the parts exceed the maximum size.
   */
  readonly failure: string | null;
}

export interface AdminEndpoint {
  readonly basePath: string;
  readonly service: UploadService;
}

export type UploadState = 'in_progress' | 'finished' | 'all';

export function uploadSummary(upload: UploadRecord, endpoint: string, liveOffset?: number): UploadSummary {
  const offset = Math.max(upload.offset, liveOffset ?? 0);
  const finished = isComplete(upload);
  return {
    id: upload.id,
    endpoint,
    offset,
    length: upload.length,
    progress: upload.length === null ? null : upload.length === 0 ? 1 : Math.min(1, offset / upload.length),
    finished,
    createdAt: Number.isFinite(upload.createdAt) ? upload.createdAt : null,
    metadata: { ...upload.metadata },
    failure: typeof upload.failure === 'string' && upload.failure !== '' ? upload.failure : null,
  };
}

/** Offsets of bodies being received now, by upload id (fresher than the stored records). */
function liveOffsets(endpoint: AdminEndpoint): Map<string, number> {
  const offsets = new Map<string, number>();
  for (const write of endpoint.service.writesInProgress()) offsets.set(write.upload.id, write.offset);
  return offsets;
}

/** Uploads of every endpoint, newest first. */
export async function listUploads(
  endpoints: readonly AdminEndpoint[],
  state: UploadState,
  limit: number,
): Promise<UploadSummary[]> {
  const found = new Map<string, UploadSummary>();
  for (const endpoint of endpoints) {
    const live = liveOffsets(endpoint);
    for await (const record of endpoint.service.list()) {
      if (found.has(record.id)) continue;
      const finished = isComplete(record);
      if ((state === 'finished' && !finished) || (state === 'in_progress' && finished)) continue;
      found.set(record.id, uploadSummary(record, endpoint.basePath, live.get(record.id)));
    }
  }
  return [...found.values()].sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0)).slice(0, limit);
}

/** One upload, from whichever endpoint holds it; undefined when none does (or it expired). */
export async function findUpload(
  endpoints: readonly AdminEndpoint[],
  id: string,
): Promise<UploadSummary | undefined> {
  for (const endpoint of endpoints) {
    try {
      const record = await endpoint.service.get(id);
      return uploadSummary(record, endpoint.basePath, liveOffsets(endpoint).get(id));
    } catch (error) {
      if (error instanceof WharfError && (error.status === 404 || error.status === 410)) continue;
      throw error;
    }
  }
  return undefined;
}
