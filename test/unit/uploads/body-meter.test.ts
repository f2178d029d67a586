import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { WharfError } from '../../../src/errors.ts';
import { BodyMeter } from '../../../src/uploads/body-meter.ts';

const KiB = 1024;

function meterOf(limit = Number.MAX_SAFE_INTEGER, checksumAlgorithm?: string): BodyMeter {
  return new BodyMeter({
    limit,
    limitError: () => new WharfError('ERR_UPLOAD_SIZE_EXCEEDED'),
    checksumAlgorithm,
  });
}

/** Everything the meter hands on, once it ends. */
async function drain(meter: BodyMeter): Promise<Buffer> {
  const chunks: Buffer[] = [];
  meter.on('data', (chunk: Buffer) => chunks.push(chunk));
  meter.resume(); // a meter paused by hand does not flow again on a new 'data' listener
  await once(meter, 'end');
  return Buffer.concat(chunks);
}

/** A request body of `count` chunks of 16 KiB (chunk i filled with i), produced as its reader asks. */
function requestOf(count: number): Readable & { produced: number } {
  let next = 0;
  const request = new Readable({
    highWaterMark: 16 * KiB,
    read() {
      if (next === count) {
        this.push(null);
        return;
      }
      request.produced += 16 * KiB;
      this.push(Buffer.alloc(16 * KiB, next++));
    },
  }) as Readable & { produced: number };
  request.produced = 0;
  return request;
}

test('a meter whose reader does not read holds one chunk and pauses the request', async () => {
  const request = requestOf(32);
  const meter = meterOf();
  meter.pause(); // the store is busy writing
  meter.drawFrom(request);
  await tick();
  await tick();
  // What left the request and is not yet handed on. A Transform piped to took chunks up to its mark on each of its two sides.
  assert.equal(request.produced - request.readableLength, 16 * KiB);
  assert.equal(meter.bytesSeen, 16 * KiB);
  assert.equal(request.isPaused(), true);
  const body = await drain(meter);
  assert.equal(body.length, 32 * 16 * KiB);
  assert.deepEqual(
    [...Array(32).keys()].map((i) => body[i * 16 * KiB]),
    [...Array(32).keys()],
  );
});

test('a meter counts and hashes every byte it hands on', async () => {
  const request = new PassThrough();
  const meter = meterOf(Number.MAX_SAFE_INTEGER, 'sha1');
  meter.drawFrom(request);
  const bytes = Buffer.from('hello, wharf');
  request.end(bytes);
  assert.deepEqual(await drain(meter), bytes);
  assert.equal(meter.bytesSeen, bytes.length);
  assert.deepEqual(meter.digest(), createHash('sha1').update(bytes).digest());
  assert.equal(meter.interruption, undefined);
});

test('a body over the limit stops at the chunk that crosses it, with the limit error', async () => {
  const request = new PassThrough();
  const meter = meterOf(10);
  meter.drawFrom(request);
  const received = drain(meter);
  request.write(Buffer.from('12345'));
  request.write(Buffer.from('678901'));
  assert.equal((await received).toString(), '12345');
  assert.equal(meter.interruption?.code, 'ERR_UPLOAD_SIZE_EXCEEDED');
  assert.equal(request.isPaused(), true);
});

test('an interrupted meter still hands on what it holds, then ends and stops reading', async () => {
  const request = new PassThrough();
  const meter = meterOf();
  meter.drawFrom(request);
  meter.pause();
  request.write(Buffer.from('kept'));
  await tick();
  meter.interrupt(new WharfError('ERR_UPLOAD_INTERRUPTED'));
  request.write(Buffer.from('dropped'));
  assert.equal((await drain(meter)).toString(), 'kept');
  assert.equal(meter.interruption?.code, 'ERR_UPLOAD_INTERRUPTED');
  assert.equal(request.listenerCount('data'), 0);
});

test('asked to give way, a meter first reads what keeps arriving, then ends with the reason once the body is quiet', async () => {
  const upstream = new PassThrough();
  const meter = meterOf();
  meter.drawFrom(upstream);
  const received = drain(meter);
  upstream.write(Buffer.alloc(16 * KiB, 1));
  await tick();
  const reason = new WharfError('ERR_UPLOAD_INTERRUPTED');
  meter.giveWay(reason);
  // What a gone client left in the socket, read after the request to give way.
  for (let i = 2; i <= 5; i++) upstream.write(Buffer.alloc(16 * KiB, i));
  const body = await received;
  assert.equal(body.length, 5 * 16 * KiB);
  assert.equal(body[4 * 16 * KiB], 5);
  assert.equal(meter.interruption, reason);
  // Bytes sent after it gave way are not taken (the lock went to the next request).
  upstream.write(Buffer.alloc(16 * KiB, 9));
  await tick();
  assert.equal(meter.bytesSeen, 5 * 16 * KiB);
});

test('asked to give way, a meter whose body brings nothing more ends with the reason', async () => {
  const upstream = new PassThrough();
  const meter = meterOf();
  meter.drawFrom(upstream);
  const received = drain(meter);
  upstream.write(Buffer.alloc(16 * KiB, 1));
  await tick();
  const reason = new WharfError('ERR_UPLOAD_INTERRUPTED');
  meter.giveWay(reason);
  assert.equal((await received).length, 16 * KiB);
  assert.equal(meter.interruption, reason);
});
