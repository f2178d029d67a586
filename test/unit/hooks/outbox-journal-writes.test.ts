import assert from 'node:assert/strict';
import fs, { readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { entryKey, OutboxJournal } from '../../../src/hooks/delivery/outbox-journal.ts';
import { journalEntry, temporaryDirectory } from './fixtures.ts';

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Counts the writes to the journal file: the journal appends through fs.write, which is wrapped for the test (and
 * put back after it; syncBuiltinESMExports carries it to `import { write } from 'node:fs'`); only writes to a
 * descriptor open on `file` count.
 */
function countWrites(context: test.TestContext, file: string): { writes: number } {
  const original = fs.write;
  const counter = { writes: 0 };
  const counting = (fd: number, ...args: unknown[]): void => {
    if (readlinkSync(`/proc/self/fd/${fd}`) === file) counter.writes += 1;
    (original as (...all: unknown[]) => void)(fd, ...args);
  };
  fs.write = counting as typeof fs.write;
  syncBuiltinESMExports();
  context.after(() => {
    fs.write = original;
    syncBuiltinESMExports();
  });
  return counter;
}

test("a delivered event's journal line leaves with the next added events in one write, not in a write of its own", async (context) => {
  const directory = await temporaryDirectory(context);
  // A delay no test run reaches: only the next added line (or flushed()) writes the delivered lines.
  const journal = new OutboxJournal(directory, 60_000);
  await journal.open();
  context.after(() => journal.close());
  const counter = countWrites(context, journal.file);

  for (let index = 0; index < 10; index++) journal.add(journalEntry(index));
  await journal.flushed();
  assert.equal(counter.writes, 1, 'ten events added in one turn: one write');

  // The broker confirms them in one turn; the next turn's uploads add ten more events.
  for (let index = 0; index < 10; index++) journal.done(entryKey('amqp', `event-${index}`));
  await nextTurn();
  await nextTurn();
  for (let index = 10; index < 20; index++) journal.add(journalEntry(index));
  await journal.flushed();
  assert.equal(counter.writes, 2, 'the delivered lines went out with the next added ones');

  // What a restart replays: only the ten events never delivered.
  await journal.close();
  const replay = new OutboxJournal(directory);
  const state = await replay.open();
  await replay.close();
  assert.deepEqual(
    state.owed.map((owed) => owed.delivery.eventId),
    Array.from({ length: 10 }, (_, index) => `event-${index + 10}`),
  );
});

test('a delivered line with no event after it is written on its own within the delay, and at once by flushed()', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory, 5);
  await journal.open();
  context.after(() => journal.close());
  journal.add(journalEntry(1));
  journal.add(journalEntry(2));
  await journal.flushed();

  journal.done(entryKey('amqp', 'event-1'));
  // Nothing else comes: the line is written once its delay ran out.
  for (let polls = 0; ; polls++) {
    const text = await readFile(journal.file, 'utf8');
    if (text.includes('"done"')) break;
    assert.ok(polls < 500, 'the delivered line reached the file');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // flushed() does not wait for the delay.
  const slow = new OutboxJournal(directory, 60_000);
  await journal.close();
  const state = await slow.open();
  assert.deepEqual(
    state.owed.map((owed) => owed.delivery.eventId),
    ['event-2'],
  );
  slow.done(entryKey('amqp', 'event-2'));
  await slow.flushed();
  const text = await readFile(slow.file, 'utf8');
  assert.match(text, /"done","key":"amqp event-2"/);
  await slow.close();
});

test('events added in successive turns of the event loop within the delay share one write, and flushed() does not wait for it', async (context) => {
  const directory = await temporaryDirectory(context);
  // A delay no test run reaches for delivered lines; 50 ms for added ones.
  const journal = new OutboxJournal(directory, 60_000, 50);
  await journal.open();
  context.after(() => journal.close());
  const counter = countWrites(context, journal.file);

  // Three requests answered in three turns, each adding an event.
  for (let index = 0; index < 3; index++) {
    journal.add(journalEntry(index));
    await nextTurn();
  }
  for (let polls = 0; counter.writes === 0; polls++) {
    assert.ok(polls < 500, 'the lines were written');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(counter.writes, 1, 'one write for the three turns');
  assert.equal((await readFile(journal.file, 'utf8')).split('\n').length - 1, 3);

  // flushed() writes what waits at once.
  journal.add(journalEntry(3));
  await journal.flushed();
  assert.equal(counter.writes, 2);
  assert.equal((await readFile(journal.file, 'utf8')).split('\n').length - 1, 4);
});

test('an event delivered before its line was written costs the journal nothing: neither line is written', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory, 60_000, 50);
  await journal.open();
  context.after(() => journal.close());
  const counter = countWrites(context, journal.file);

  for (let index = 0; index < 3; index++) journal.add(journalEntry(index));
  // The broker confirms two of them within the delay; the third is still owed.
  journal.done(entryKey('amqp', 'event-0'));
  journal.done(entryKey('amqp', 'event-2'));
  await journal.flushed();
  assert.equal(counter.writes, 1);
  const lines = (await readFile(journal.file, 'utf8')).split('\n').filter((line) => line !== '');
  assert.deepEqual(
    lines.map((line) => {
      const parsed = JSON.parse(line);
      return `${parsed.t} ${parsed.entry?.delivery.eventId ?? parsed.key}`;
    }),
    ['add event-1'],
  );
  // Once written, its delivery is a line of its own.
  journal.done(entryKey('amqp', 'event-1'));
  await journal.flushed();
  assert.equal(counter.writes, 2);

  // Only what was owed at a crash would come back; here nothing is.
  await journal.close();
  const replay = new OutboxJournal(directory);
  assert.deepEqual((await replay.open()).owed, []);
  await replay.close();
});

test('an event delivered before its line was written is not kept by the journal until its next write', async (context) => {
  setFlagsFromString('--expose-gc');
  const collect = runInNewContext('gc') as () => void;
  const directory = await temporaryDirectory(context);
  // No write for a minute: whatever the journal holds of an entry, it holds all that time.
  const journal = new OutboxJournal(directory, 60_000, 60_000);
  await journal.open();
  context.after(() => journal.close());
  const held = (index: number): WeakRef<object> => {
    const entry = journalEntry(index);
    journal.add(entry);
    return new WeakRef(entry.delivery);
  };
  const delivered = held(1);
  const owed = held(2);
  journal.done(entryKey('amqp', 'event-1'));
  // A collection after the turn (the WeakRefs are only cleared then).
  await nextTurn();
  collect();
  assert.equal(delivered.deref(), undefined);
  // The control: an entry still owed is kept (its line is still to be written).
  assert.notEqual(owed.deref(), undefined);
  await journal.flushed();
  const lines = (await readFile(journal.file, 'utf8')).split('\n').filter((line) => line !== '');
  assert.deepEqual(
    lines.map((line) => JSON.parse(line).entry.delivery.eventId),
    ['event-2'],
  );
});
