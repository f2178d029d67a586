import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileInfoStore } from '../../../src/info/file.ts';
import { describeInfoStore } from '../../contract/info-store.ts';

describeInfoStore('file', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-info-'));
  return {
    store: new FileInfoStore(directory, { fsync: false }),
    close: () => rm(directory, { recursive: true, force: true }),
  };
});

describeInfoStore('file with cached records', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-info-'));
  return {
    store: new FileInfoStore(directory, { fsync: false, cachedRecords: 2 }),
    close: () => rm(directory, { recursive: true, force: true }),
  };
});
