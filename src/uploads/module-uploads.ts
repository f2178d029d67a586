import type { Readable } from 'node:stream';
import { WharfError } from '../errors.ts';
import type { ModuleUpload, ModuleUploads } from '../hooks/modules/types.ts';
import { isComplete, type UploadRecord } from '../info/upload-record.ts';
import type { UploadService } from './service.ts';

function moduleUpload(record: UploadRecord): ModuleUpload {
  return {
    id: record.id,
    offset: record.offset,
    length: record.length,
    metadata: { ...record.metadata },
    // Unix seconds, as in every hook payload (rustus's created_at): the record keeps milliseconds.
    createdAt: Math.floor(record.createdAt / 1000),
    finished: isComplete(record),
  };
}

/**
 * The uploads service as hook modules see it (`context.uploads`). The service is looked up on each call: the
 * modules are loaded before the service exists (the service's hook observer needs the loaded modules).
 */
export function moduleUploadsOf(service: () => UploadService): ModuleUploads {
  return {
    async get(id: string): Promise<ModuleUpload | undefined> {
      try {
        return moduleUpload(await service().get(id));
      } catch (error) {
        if (error instanceof WharfError && (error.status === 404 || error.status === 410)) return undefined;
        throw error;
      }
    },
    async *list(): AsyncIterable<ModuleUpload> {
      for await (const record of service().list()) yield moduleUpload(record);
    },
    delete(id: string): Promise<boolean> {
      return service().remove(id);
    },
    read(id: string): Promise<Readable> {
      return service().download(id);
    },
  };
}
