import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FileInfoStore } from '../../../src/info/file.ts';
import { uploadRecord } from '../../support/upload-record.ts';

const id = '0b0e3a53-5a59-4a9e-9d3c-5a1e64f0c0aa';

/** The pid of a process that ran and has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  assert.ok(child.pid !== undefined, 'the child process had a pid');
  return child.pid;
}

test('start-up removes the temp files of record rewrites a crashed process left, and only those', async () => {
  const directory = await mkdtemp(path.join(tmpdir(), 'wharf-info-leftovers-'));
  try {
    const dead = await deadPid();
    const leftovers = [
      `${id}.info.${dead}.0123456789ab.tmp`, // a crashed process's rewrite
      `${id}.info.${process.pid}.0123456789ab.tmp`, // this pid's, left by an earlier process that had it
      `${id}.info.0123456789ab.tmp`, // named by an older Wharf, without a pid
    ];
    const kept = [
      `${id}.info.1.0123456789ab.tmp`, // a rewrite of a process that runs (another worker)
      'notes.tmp', // not a record's temp file
      `${id}.info`, // the record
      id, // an upload file, when data and records share the folder
    ];
    for (const name of [...leftovers, ...kept]) await writeFile(path.join(directory, name), '{}\n');
    const store = new FileInfoStore(directory, { fsync: false });
    await store.prepare();
    assert.deepEqual((await readdir(directory)).sort(), [...kept].sort());
    // The store works on: the record is read and a new version written.
    await store.put(
      uploadRecord({ id: '5d0e3a53-5a59-4a9e-9d3c-5a1e64f0c0ab', offset: 3, createdAt: 1 }),
      null,
    );
    assert.equal((await store.get('5d0e3a53-5a59-4a9e-9d3c-5a1e64f0c0ab'))?.offset, 3);
    await store.close();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
});
