import assert from 'node:assert/strict';
import { write } from 'node:fs';
import { type FileHandle, mkdtemp, open, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { OpenFile, OpenFiles } from '../../src/open-files.ts';
import { eventually } from '../support/eventually.ts';

/**
 * The files kept open between requests (upload files, record files): what stays open is bounded whatever goes
 * through, the files kept last stay usable, and those pushed out are really closed (descriptors given back).
 */
let root: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'wharf-open-files-'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Descriptors this process holds on files of the test folder (Linux: /proc/self/fd links to their paths). */
async function openInRoot(): Promise<number> {
  const links = await readdir('/proc/self/fd');
  let count = 0;
  for (const link of links) {
    const target = await readlink(`/proc/self/fd/${link}`).catch(() => '');
    if (target.startsWith(root + path.sep)) count++;
  }
  return count;
}

/** Waits until at most `most` files of the test folder are open (closes sent without waiting take a moment). */
async function openAtMost(most: number, what: string): Promise<void> {
  await eventually(async () => ((await openInRoot()) <= most ? true : undefined), what);
}

test('at most the limit and one batch of files stay open, however many are kept; the last kept stay usable', async () => {
  const files = new OpenFiles<FileHandle>(8);
  const handles = [];
  for (let i = 0; i < 100; i++) {
    const handle = await open(path.join(root, `upload-${i}`), 'w+');
    handles.push(handle);
    await files.keep(`upload-${i}`, handle);
    await openAtMost(8 + 2, `at most 10 files open after keeping ${i + 1}`);
  }
  // Those pushed out are closed (a closed FileHandle has no descriptor), the most recently kept 8 are not.
  const closed = handles.filter((handle) => handle.fd === -1).length;
  assert.ok(closed >= 100 - 8 - 2 && closed <= 100 - 8, `${closed} closed`);
  for (let i = 92; i < 100; i++) {
    const handle = files.take(`upload-${i}`);
    assert.ok(handle !== undefined, `upload-${i} is still kept`);
    await handle.write(`bytes of ${i}`, 0);
    await handle.close();
    assert.equal(await readFile(path.join(root, `upload-${i}`), 'utf8'), `bytes of ${i}`);
  }
  assert.equal(files.take('upload-0'), undefined, 'the oldest was pushed out');
  await files.closeAll();
  await openAtMost(0, 'every file closed');
});

test('a limit of 0 keeps nothing: each file given back is closed at once', async () => {
  const files = new OpenFiles(0);
  const handle = await open(path.join(root, 'alone'), 'w');
  await files.keep('alone', handle);
  assert.equal(handle.fd, -1);
  assert.equal(files.take('alone'), undefined);
});

test('an OpenFile closes once: closing it again never closes a file opened since under the same descriptor', async () => {
  const first = await OpenFile.open(path.join(root, 'first'), 'w+');
  const number = first.fd;
  await first.close();
  const second = await OpenFile.open(path.join(root, 'second'), 'w+');
  // The kernel hands out the lowest free descriptor: the second file gets the first's number back.
  assert.equal(second.fd, number);
  await first.close();
  // A call made through the closed file fails rather than reach the second one (a FileHandle's would too).
  assert.notEqual(first.fd, number);
  await assert.rejects(first.size(), { code: 'EBADF' });
  await assert.rejects(
    new Promise<void>((resolve, reject) =>
      write(first.fd, 'stray', 0, (error) => (error === null ? resolve() : reject(error))),
    ),
    { code: 'EBADF' },
  );
  await new Promise<void>((resolve, reject) =>
    write(second.fd, 'still open', 0, (error) => (error === null ? resolve() : reject(error))),
  );
  assert.equal(await second.size(), 'still open'.length);
  await second.truncate(5);
  await second.sync();
  assert.equal(await second.size(), 5);
  await second.close();
  assert.equal(await readFile(path.join(root, 'second'), 'utf8'), 'still');
  await openAtMost(0, 'both files closed');
});

test('after closeAll nothing is kept: a handle given back later (a use in flight at the close) is closed', async () => {
  const files = new OpenFiles<OpenFile>(8);
  const kept = await OpenFile.open(path.join(root, 'kept'), 'w+');
  await files.keep('kept', kept);
  const inUse = await OpenFile.open(path.join(root, 'in-use'), 'w+');
  await files.closeAll();
  await files.keep('in-use', inUse);
  assert.equal(files.take('in-use'), undefined);
  await openAtMost(0, 'the file given back after closeAll closed too');
});
