import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsPromises from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { test } from 'node:test';
import { entryKey, OutboxJournal } from '../../../src/hooks/delivery/outbox-journal.ts';
import { journalEntry, temporaryDirectory } from './fixtures.ts';

/** The event ids a journal in `directory` owes when read back, as at a restart. */
async function owedAfterRestart(directory: string): Promise<string[]> {
  const replay = new OutboxJournal(directory);
  const state = await replay.open();
  await replay.close();
  return state.owed.map((owed) => owed.delivery.eventId);
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Holds the journal's appends (fs.write) until `release()`, as a slow disk does: the write stays in flight while
 * the server goes on (a fake inside a unit test of one module; syncBuiltinESMExports carries it to the import).
 */
function holdWrites(context: test.TestContext): { release: () => void; held: () => number } {
  const original = fs.write;
  const waiting: (() => void)[] = [];
  let holding = true;
  const held = (...args: unknown[]): void => {
    const call = (): void => (original as (...all: unknown[]) => void)(...args);
    if (holding) waiting.push(call);
    else call();
  };
  fs.write = held as typeof fs.write;
  syncBuiltinESMExports();
  context.after(() => {
    fs.write = original;
    syncBuiltinESMExports();
  });
  return {
    release: () => {
      holding = false;
      for (const call of waiting.splice(0)) call();
    },
    held: () => waiting.length,
  };
}

test('an event added while a compaction waits behind a write in flight is still in the journal after it', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory, 60_000, 0);
  await journal.open();
  const writes = holdWrites(context);

  // Event 0's line is being written (the disk is slow).
  journal.add(journalEntry(0));
  await nextTurn();
  await nextTurn();
  assert.equal(writes.held(), 1, "event 0's write is in flight");
  // Event 1 comes: its write is scheduled behind the one in flight.
  journal.add(journalEntry(1));
  await nextTurn();
  // A confirm makes the store compact the journal with what it owes now: events 0 and 1.
  const compacted = journal.compact({ owed: [journalEntry(0), journalEntry(1)], dead: [] });
  // Event 2 comes before the disk answers.
  journal.add(journalEntry(2));
  writes.release();
  await compacted;
  await journal.flushed();
  await journal.close();

  // A restart (a crash now) owes all three: none was delivered.
  assert.deepEqual(await owedAfterRestart(directory), ['event-0', 'event-1', 'event-2']);
});

test('a journal write that fails (a full disk) is written again, and the journal goes on writing', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory, 60_000, 0);
  await journal.open();
  // The disk is full for one write.
  const original = fs.write;
  let full = true;
  const failing = (...args: unknown[]): void => {
    const callback = args[args.length - 1] as (error: Error | null, written: number) => void;
    if (!full) {
      (original as (...all: unknown[]) => void)(...args);
      return;
    }
    full = false;
    const error = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    setImmediate(() => callback(error, 0));
  };
  fs.write = failing as typeof fs.write;
  syncBuiltinESMExports();
  context.after(() => {
    fs.write = original;
    syncBuiltinESMExports();
  });

  // The owner (the file outbox store) logs the failure once, and the recovery.
  const reports: (string | undefined)[] = [];
  journal.onWriteFailure = (error) => reports.push(error instanceof Error ? error.message : undefined);
  journal.add(journalEntry(0));
  await nextTurn();
  await nextTurn();
  await nextTurn();
  assert.equal(full, false, "event 0's write failed");
  assert.deepEqual(reports, ['ENOSPC: no space left on device, write']);
  journal.add(journalEntry(1));
  await journal.flushed();
  await journal.close();
  assert.deepEqual(
    reports,
    ['ENOSPC: no space left on device, write', undefined],
    'the recovery is reported',
  );

  assert.deepEqual(await owedAfterRestart(directory), ['event-0', 'event-1']);
});

test('lines queued while the journal opens wait for the write of those queued before: one write at a time', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory, 60_000, 0);
  const writes = holdWrites(context);
  // An event comes while the journal is still being opened (its line waits for the file)...
  journal.add(journalEntry(0));
  const opened = journal.open();
  for (let waited = 0; waited < 400 && writes.held() === 0; waited++)
    await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(writes.held(), 1, "open() writes event 0's line");
  // ...and is delivered while that line is being written: its delivered line must not overtake it (two writes
  // in flight at once on the thread pool land in either order).
  journal.done(entryKey('amqp', 'event-0'));
  const flushed = journal.flushed();
  for (let turn = 0; turn < 5; turn++) await nextTurn();
  assert.equal(writes.held(), 1, 'the delivered line waits for the write in flight');
  writes.release();
  await opened;
  await flushed;
  await journal.close();

  assert.deepEqual(await owedAfterRestart(directory), []);
});

test('a compaction whose rewritten journal cannot be opened again (EMFILE) leaves later lines written to it, not lost', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory, 60_000, 0);
  await journal.open();
  journal.add(journalEntry(0));
  await journal.flushed();
  // The next open of the journal for appending fails once (a fake of fs/promises.open inside this unit test).
  const original = fsPromises.open;
  let refused = 0;
  const refusingOnce = ((file: string, flags: string, ...rest: unknown[]) => {
    if (file === journal.file && flags === 'a' && refused === 0) {
      refused += 1;
      return Promise.reject(
        Object.assign(new Error('EMFILE: too many open files, open'), { code: 'EMFILE' }),
      );
    }
    return (original as (...all: unknown[]) => Promise<unknown>)(file, flags, ...rest);
  }) as typeof fsPromises.open;
  fsPromises.open = refusingOnce;
  syncBuiltinESMExports();
  context.after(() => {
    fsPromises.open = original;
    syncBuiltinESMExports();
  });
  await assert.rejects(journal.compact({ owed: [journalEntry(0)], dead: [] }), /EMFILE/);
  assert.equal(refused, 1, 'the compaction renamed the new file, then could not open it');
  // Events go on: their lines reach the new journal file.
  journal.add(journalEntry(1));
  journal.add(journalEntry(2));
  await journal.flushed();
  await journal.close();

  assert.deepEqual(await owedAfterRestart(directory), ['event-0', 'event-1', 'event-2']);
});
