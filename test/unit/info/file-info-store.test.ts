import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileInfoStore } from '../../../src/info/file.ts';
import { describeInfoStore } from '../../contract/info-store.ts';

describeInfoStore('file', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-info-'));
  const store = new FileInfoStore(directory, { fsync: false });
  return {
    store,
    close: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

describeInfoStore('file with cached records', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-info-'));
  const store = new FileInfoStore(directory, { fsync: false, cachedRecords: 2 });
  return {
    store,
    close: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});
