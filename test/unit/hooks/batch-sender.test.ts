import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchSender, type BatchSenderOptions } from '../../../src/hooks/transports/batch-sender.ts';

/** A target that records each batch and answers when the test says so. */
function target(refuse: (items: readonly string[]) => Error | undefined = () => undefined) {
  const batches: string[][] = [];
  const answers: Array<() => void> = [];
  const sendBatch = (items: readonly string[]): Promise<void> => {
    batches.push([...items]);
    return new Promise<void>((resolve, reject) => {
      answers.push(() => {
        const error = refuse(items);
        if (error === undefined) resolve();
        else reject(error);
      });
    });
  };
  /** Answers every request so far, then lets the sender send what waited. */
  const answer = async (): Promise<void> => {
    for (const reply of answers.splice(0)) reply();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { batches, sendBatch, answer };
}

function sender(
  sendBatch: BatchSenderOptions<string>['sendBatch'],
  options: Partial<BatchSenderOptions<string>> = {},
): BatchSender<string> {
  return new BatchSender<string>({
    sendBatch,
    sizeOf: (item) => item.length,
    maxItems: 100,
    maxBytes: 1000,
    lingerMs: 0,
    mayBeOneItem: (error) => error instanceof Error && error.message.startsWith('refused'),
    ...options,
  });
}

describe('batch sender (group commit)', () => {
  test('an idle sender sends at once; what arrives meanwhile leaves together, in order', async () => {
    const { batches, sendBatch, answer } = target();
    const batcher = sender(sendBatch);
    const sent = ['a', 'b', 'c', 'd'].map((item) => batcher.send(item));
    assert.deepEqual(batches, [['a']]);
    await answer();
    assert.deepEqual(batches, [['a'], ['b', 'c', 'd']]);
    await answer();
    await Promise.all(sent);
  });

  test('a batch stops at its item count and at its byte size; an item larger than the size goes alone', async () => {
    const { batches, sendBatch, answer } = target();
    const batcher = sender(sendBatch, { maxItems: 3, maxBytes: 10 });
    const sent = ['first', 'a', 'b', 'c', 'd', 'eeeeee', 'ffff', 'g'.repeat(30), 'h'].map((item) =>
      batcher.send(item),
    );
    for (let round = 0; round < 6; round++) await answer();
    await Promise.all(sent);
    assert.deepEqual(batches, [
      ['first'],
      ['a', 'b', 'c'],
      ['d', 'eeeeee'],
      ['ffff'],
      ['g'.repeat(30)],
      ['h'],
    ]);
  });

  test('with a linger, the first items wait for company', async () => {
    const { batches, sendBatch, answer } = target();
    const batcher = sender(sendBatch, { lingerMs: 20 });
    const first = batcher.send('a');
    assert.deepEqual(batches, []);
    const second = batcher.send('b');
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.deepEqual(batches, [['a', 'b']]);
    await answer();
    await Promise.all([first, second]);
  });

  test('an item that waited its linger behind a batch on its way leaves as soon as that batch is answered', async () => {
    const { batches, sendBatch, answer } = target();
    const batcher = sender(sendBatch, { lingerMs: 200 });
    const first = batcher.send('a');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(batches, [['a']]);
    const second = batcher.send('b');
    await new Promise((resolve) => setTimeout(resolve, 300));
    // 'b' has waited longer than its linger behind the request of 'a': once that is answered, 'b' goes at once.
    await answer();
    assert.deepEqual(batches, [['a'], ['b']]);
    const third = batcher.send('c');
    // ... while one that has just arrived waits for company.
    await answer();
    assert.deepEqual(batches, [['a'], ['b']]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(batches, [['a'], ['b'], ['c']]);
    await answer();
    await Promise.all([first, second, third]);
  });

  test('a linger ends early once a batch is full', async () => {
    const { batches, sendBatch, answer } = target();
    const batcher = sender(sendBatch, { lingerMs: 60_000, maxItems: 2 });
    const sent = [batcher.send('a'), batcher.send('b')];
    assert.deepEqual(batches, [['a', 'b']]);
    await answer();
    await Promise.all(sent);
  });

  test('a record the target refuses fails alone; the others of its batch are delivered', async () => {
    const { batches, sendBatch, answer } = target((items) =>
      items.includes('poison') ? new Error('refused: too large') : undefined,
    );
    const batcher = sender(sendBatch);
    const first = batcher.send('first');
    const outcomes = ['a', 'poison', 'b'].map((item) =>
      batcher.send(item).then(
        () => 'delivered',
        (error: Error) => error.message,
      ),
    );
    for (let round = 0; round < 6; round++) await answer();
    await first;
    assert.deepEqual(await Promise.all(outcomes), ['delivered', 'refused: too large', 'delivered']);
    assert.deepEqual(batches, [['first'], ['a', 'poison', 'b'], ['a'], ['poison'], ['b']]);
  });

  test('a failure that is everyone’s (target down) fails the whole batch once, without sending each again', async () => {
    const { batches, sendBatch, answer } = target(() => new Error('connection refused'));
    const batcher = sender(sendBatch);
    const first = batcher.send('first').catch((error: Error) => error.message);
    const rest = ['a', 'b'].map((item) => batcher.send(item).catch((error: Error) => error.message));
    await answer();
    await answer();
    assert.equal(await first, 'connection refused');
    assert.deepEqual(await Promise.all(rest), ['connection refused', 'connection refused']);
    assert.deepEqual(batches, [['first'], ['a', 'b']]);
  });

  test('an item given up (its signal aborted) before its batch leaves is not sent', async () => {
    const { batches, sendBatch, answer } = target();
    const batcher = sender(sendBatch);
    const first = batcher.send('first');
    const giveUp = new AbortController();
    const abandoned = batcher.send('abandoned', giveUp.signal).catch((error: unknown) => error);
    const kept = batcher.send('kept');
    giveUp.abort(new Error('timed out'));
    await answer();
    await answer();
    await Promise.all([first, kept]);
    assert.equal(((await abandoned) as Error).message, 'timed out');
    assert.deepEqual(batches, [['first'], ['kept']]);
  });
});
