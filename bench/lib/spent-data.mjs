// A finished run's data folder, emptied now and deleted only when the whole bench ends.
//
// Why not delete it at once: the root file system of the bench machine is ext4 without a journal, and on such a
// file system the kernel's inode allocator skips, one check at a time, every inode freed in the last 60 s (360 s
// while its block is dirty). Deleting a run's thousands of small files made creating a file 4-5x dearer for the
// server that ran next (120-250 us instead of 22-55), so the small-upload figures depended on who ran after whom.
// Truncating the files instead frees their blocks and drops their pages before they are written back (what the
// deletion was for: the next server starts on a quiet disk) while their inodes stay in use.
import { readdir, rm, truncate } from 'node:fs/promises';
import path from 'node:path';

/** Empties every file under `folder` (recursively), keeping the files and folders themselves. */
export async function emptyFiles(folder) {
  const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const full = path.join(folder, entry.name);
    if (entry.isDirectory()) await emptyFiles(full);
    else if (entry.isFile()) await truncate(full, 0).catch(() => {});
  }
}

/** Folders emptied by {@link retire}, deleted by {@link deleteRetired} when the bench ends. */
const retired = [];

export async function retire(folder) {
  await emptyFiles(folder);
  retired.push(folder);
}

export async function deleteRetired() {
  for (const folder of retired.splice(0)) await rm(folder, { recursive: true, force: true });
}
