import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Outbox } from '../../../src/hooks/delivery/outbox.ts';
import { FileOutboxStore } from '../../../src/hooks/delivery/outbox-file-store.ts';
import {
  addLine,
  entryKey,
  OutboxJournal,
  type StoredEntry,
} from '../../../src/hooks/delivery/outbox-journal.ts';
import type { HookTransport } from '../../../src/hooks/transports/types.ts';
import { journalEntry, temporaryDirectory } from './fixtures.ts';

// The journal is replayed at start while the server already answers uploads: it must not hold the event loop for
// the whole replay (50,000 waiting events took 0.7 s of CPU), nor rewrite a file that holds nothing to drop.

const add = (index: number): string => addLine(journalEntry(index));
const done = (index: number): string =>
  JSON.stringify({ t: 'done', key: entryKey('amqp', `event-${index}`) });
const ids = (entries: readonly StoredEntry[]): string[] => entries.map((owed) => owed.delivery.eventId);

async function replay(directory: string): Promise<string[]> {
  const journal = new OutboxJournal(directory);
  const state = await journal.open();
  await journal.close();
  return ids(state.owed);
}

/** Samples `read()` at every turn of the event loop while `run` runs. */
async function sampled<T>(
  read: () => number,
  run: () => Promise<T>,
): Promise<{ result: T; samples: number[] }> {
  const samples: number[] = [];
  let running = true;
  const sample = (): void => {
    samples.push(read());
    if (running) setImmediate(sample);
  };
  setImmediate(sample);
  const result = await run();
  running = false;
  return { result, samples };
}

test('a journal of live entries only is opened as it is; delivered lines or an entry written twice make it rewritten', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory);
  const compact = `${[add(1), add(2), add(3)].join('\n')}\n`;
  await writeFile(journal.file, compact);
  const file = (await stat(journal.file)).ino;
  assert.deepEqual(ids((await journal.open()).owed), ['event-1', 'event-2', 'event-3']);
  // The same file (a rewrite renames a new one over it), unchanged.
  assert.equal((await stat(journal.file)).ino, file);
  assert.equal(await readFile(journal.file, 'utf8'), compact);
  journal.add(journalEntry(4));
  journal.done(entryKey('amqp', 'event-2'));
  await journal.close();
  assert.deepEqual(await replay(directory), ['event-1', 'event-3', 'event-4']);
  assert.notEqual((await stat(journal.file)).ino, file);
  // That replay had a delivered line to drop: the file now holds the live entries only.
  assert.equal(await readFile(journal.file, 'utf8'), `${[add(1), add(3), add(4)].join('\n')}\n`);

  await writeFile(journal.file, `${[add(5), add(6), add(5)].join('\n')}\n`);
  assert.deepEqual(await replay(directory), ['event-5', 'event-6']);
  assert.equal(await readFile(journal.file, 'utf8'), `${[add(5), add(6)].join('\n')}\n`);
});

test('after a line torn by a crash the file is rewritten, so an event added next is kept whole', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory);
  await writeFile(journal.file, `${add(1)}\n${add(2).slice(0, 40)}`);
  assert.deepEqual(ids((await journal.open()).owed), ['event-1']);
  journal.add(journalEntry(3));
  await journal.close();
  assert.deepEqual(await replay(directory), ['event-1', 'event-3']);
});

test('a compaction keeps the lines queued while it waits for a running write', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory, 60_000);
  await journal.open();
  journal.add(journalEntry(1));
  // The write of that line is under way when the compaction is asked for, and entry 2 is added right after.
  await new Promise((resolve) => setImmediate(resolve));
  const compaction = journal.compact({ owed: [journalEntry(1)], dead: [] });
  journal.add(journalEntry(2));
  await compaction;
  await journal.close();
  assert.deepEqual(await replay(directory), ['event-1', 'event-2']);
});

test('a journal of 5,000 entries is read and rewritten in pieces: the event loop turns in between', async (context) => {
  const directory = await temporaryDirectory(context);
  const count = 5000;
  const journal = new OutboxJournal(directory);
  // A delivered line: the file is rewritten too.
  await writeFile(
    journal.file,
    `${[...Array.from({ length: count }, (_, index) => add(index)), done(0)].join('\n')}\n`,
  );
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  let parsed = 0;
  let written = 0;
  JSON.parse = (...args: Parameters<typeof JSON.parse>) => {
    parsed += 1;
    return parse(...args);
  };
  JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => {
    written += 1;
    return stringify(...args);
  }) as typeof JSON.stringify;
  context.after(() => {
    JSON.parse = parse;
    JSON.stringify = stringify;
  });
  const { result, samples } = await sampled(
    () => parsed * 10_000 + written,
    () => journal.open(),
  );
  JSON.parse = parse;
  JSON.stringify = stringify;
  await journal.close();
  assert.equal(result.owed.length, count - 1);
  assert.equal(parsed, count + 1);
  assert.equal(written, count - 1);
  // Turns of the event loop while lines were being parsed, and while they were being written.
  assert.ok(
    samples.some((sample) => Math.floor(sample / 10_000) > 0 && Math.floor(sample / 10_000) < count + 1),
  );
  assert.ok(samples.some((sample) => sample % 10_000 > 0 && sample % 10_000 < count - 1));
  assert.deepEqual((await replay(directory)).slice(0, 2), ['event-1', 'event-2']);
});

test('the outbox resumes 5,000 entries in pieces, the event loop turning in between', async (context) => {
  const directory = await temporaryDirectory(context);
  const count = 5000;
  const journal = new OutboxJournal(directory);
  await writeFile(journal.file, `${Array.from({ length: count }, (_, index) => add(index)).join('\n')}\n`);
  const controller = new AbortController();
  const down: HookTransport = {
    describe: () => 'down',
    deliver: async () => ({ kind: 'unreachable', detail: 'down' }),
  };
  const box = new Outbox(new Map([['amqp', down]]), {
    store: new FileOutboxStore(directory),
    limit: 100_000,
    concurrency: 1,
    logger: { info() {}, warn() {}, error() {}, debug() {} },
    signal: controller.signal,
    deliver: (transport, delivery) => transport.deliver(delivery),
    retryPolicy: () => ({ kind: 'backoff', initialMs: 60_000, maxMs: 60_000 }),
  });
  context.after(() => {
    controller.abort();
    return box.close();
  });
  const { samples } = await sampled(
    () => box.pending,
    () => box.ready(),
  );
  assert.ok(samples.some((pending) => pending > 0 && pending < count));
  assert.deepEqual(box.stats(), { depth: count, oldestPendingAt: 1000, dropped: 0, deadLettersDropped: 0 });
});

test('a payload is written as the JSON it is and comes back from a replay as the same text, escapes and all', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory);
  await journal.open();
  // What a receiver gets must not change by a restart: quotes, backslashes, control characters, non-Latin text,
  // an escaped lone surrogate and keys that look like the journal's own, in a payload and in the request.
  const metadata = {
    filename: 'a "quoted" \\ name\n\twith tabs.txt',
    title: 'Größe 東京 😀',
    broken: '\ud800',
    payloadJson: '}}}',
    payloadLength: ',"payloadJson":{}',
  };
  const tricky: StoredEntry = {
    ...journalEntry(1),
    delivery: {
      ...journalEntry(1).delivery,
      payload: JSON.stringify({ upload: { id: 'upload-1', metadata } }),
      request: {
        uri: '/files/',
        method: 'PATCH',
        remoteAddr: null,
        headers: { payloadjson: ['"}}}"'] },
      },
      label: 'named "hook"',
    },
  };
  const array: StoredEntry = {
    ...journalEntry(2),
    delivery: { ...journalEntry(2).delivery, payload: '[1,{"a":"]"}]' },
  };
  // Not JSON text (no format makes one): kept as a string, as journals before this one held every payload.
  const plain: StoredEntry = {
    ...journalEntry(3),
    delivery: { ...journalEntry(3).delivery, payload: 'not json}' },
  };
  journal.add(tricky);
  journal.add(array);
  journal.add(plain);
  await journal.close();
  const lines = (await readFile(journal.file, 'utf8')).split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 3);
  // The payload is the line's JSON, not a string of it; the plain one stays a string.
  assert.deepEqual(JSON.parse(lines[0] as string).entry.delivery.payloadJson, {
    upload: { id: 'upload-1', metadata },
  });
  assert.equal(JSON.parse(lines[2] as string).entry.delivery.payload, 'not json}');

  const again = new OutboxJournal(directory);
  const state = await again.open();
  await again.close();
  assert.deepEqual(state.owed, [tricky, array, plain]);
  assert.equal(state.owed[0]?.delivery.payload, tricky.delivery.payload);
});

test('lines of an earlier journal (the payload as an escaped string) are still replayed', async (context) => {
  const directory = await temporaryDirectory(context);
  const journal = new OutboxJournal(directory);
  const old = (index: number): string => JSON.stringify({ t: 'add', entry: journalEntry(index) });
  await writeFile(journal.file, `${[old(1), add(2), old(3)].join('\n')}\n`);
  const state = await journal.open();
  await journal.close();
  assert.deepEqual(state.owed, [journalEntry(1), journalEntry(2), journalEntry(3)]);
});

test('the journal of a busy outbox is rewritten once it holds 10,000 lines, keeping the owed entries only', async (context) => {
  const directory = await temporaryDirectory(context);
  const store = new FileOutboxStore(directory);
  await store.open();
  context.after(() => store.close());
  const file = path.join(directory, 'journal.jsonl');
  const lines = async (): Promise<number> => (await readFile(file, 'utf8')).split('\n').length - 1;
  // Each entry added, written, then delivered (an entry delivered before its line was written leaves none).
  const churn = async (from: number, to: number): Promise<void> => {
    const entries = Array.from({ length: to - from }, (_, index) => journalEntry(from + index));
    for (const entry of entries) await store.append(entry, 100_000);
    await store.pending();
    // Every entry but a few is delivered.
    for (const [index, entry] of entries.entries())
      if ((from + index) % 1000 !== 0) await store.remove(entry);
    await store.pending();
  };
  const owed = ['event-0', 'event-1000', 'event-2000', 'event-3000', 'event-4000', 'event-5000'];
  // Two lines per entry (added, delivered): 9,000 lines stay as they are.
  for (let from = 0; from < 4500; from += 500) await churn(from, from + 500);
  assert.equal(await lines(), 8995);
  // As a server goes on: events added and delivered a hundred at a time, each batch written before the next.
  for (let from = 4500; from < 5300; from += 100) await churn(from, from + 100);
  // Past 10,000 lines the file was rewritten with the owed entries, then took the lines written since.
  assert.ok((await lines()) < 1000, `journal rewritten (${await lines()} lines)`);
  assert.deepEqual(
    (await store.pending()).map((entry) => entry.delivery.eventId),
    owed,
  );
  await store.close();
  const again = new FileOutboxStore(directory);
  assert.deepEqual(
    (await again.open()).map((entry) => entry.delivery.eventId),
    owed,
  );
  await again.close();
});
