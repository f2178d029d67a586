import type { UploadRecord } from '../../src/info/upload-record.ts';

/** A plain upload record (no metadata, not a concatenation, nothing expires), with the fields a test sets. */
export function uploadRecord(overrides: Partial<UploadRecord> & Pick<UploadRecord, 'id'>): UploadRecord {
  return {
    offset: 0,
    length: 1000,
    path: overrides.id,
    createdAt: 0,
    metadataHeader: null,
    metadata: {},
    isPartial: false,
    isFinal: false,
    parts: null,
    concatHeader: null,
    pendingFinals: [],
    expiresAt: null,
    storage: 'file_storage',
    version: 0,
    ...overrides,
  };
}
