import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WharfError } from '../../../src/errors.ts';
import { BodyMeter } from '../../../src/uploads/body-meter.ts';

// Issue 17, point 9: the meter ends a body slower than the minimum rate, judged once per window, and never
// blames the client for time the store held the body back.

const windowMs = 100;

function rateMeter(): BodyMeter {
  return new BodyMeter({
    limit: Number.MAX_SAFE_INTEGER,
    limitError: () => new WharfError('ERR_UPLOAD_SIZE_EXCEEDED'),
    minimumRate: { bytesPerSecond: 1000, windowMs, error: () => new WharfError('ERR_BODY_TOO_SLOW') },
  });
}

test('a body trickling below the minimum rate is ended with ERR_BODY_TOO_SLOW, its bytes handed on', async () => {
  const request = new PassThrough();
  const meter = rateMeter();
  meter.drawFrom(request);
  const received: Buffer[] = [];
  meter.on('data', (chunk: Buffer) => received.push(chunk));
  const ended = once(meter, 'end');
  let sent = 0;
  // 1 byte every 20 ms: 50 bytes/s against 1000; stops once the meter ends (bounded for a meter that never does).
  while (meter.interruption === undefined && sent < 500) {
    request.write(Buffer.from([sent % 256]));
    sent++;
    await sleep(20);
  }
  await ended;
  assert.equal(meter.interruption?.code, 'ERR_BODY_TOO_SLOW');
  assert.ok(sent < 500, 'the meter ended the body before the sender gave up');
  assert.equal(Buffer.concat(received).length, meter.bytesSeen);
});

test('a body the store holds back for several windows is not ended, and arrives whole', async () => {
  const request = new PassThrough();
  const meter = rateMeter();
  meter.pause(); // the store is busy: the meter pauses the client after one chunk
  meter.drawFrom(request);
  const body = Buffer.alloc(64 * 1024, 9);
  // The client has more to send (the body is not over) but is paused by the meter all along.
  request.write(body.subarray(0, 32 * 1024));
  await sleep(windowMs * 6);
  assert.equal(meter.interruption, undefined);
  const received: Buffer[] = [];
  meter.on('data', (chunk: Buffer) => received.push(chunk));
  meter.resume();
  request.end(body.subarray(32 * 1024));
  await once(meter, 'end');
  assert.equal(meter.interruption, undefined);
  assert.deepEqual(Buffer.concat(received), body);
});

test('without a minimum rate, a trickle is left to the idle timer', async () => {
  const request = new PassThrough();
  const meter = new BodyMeter({
    limit: Number.MAX_SAFE_INTEGER,
    limitError: () => new WharfError('ERR_UPLOAD_SIZE_EXCEEDED'),
    minimumRate: { bytesPerSecond: 0, windowMs, error: () => new WharfError('ERR_BODY_TOO_SLOW') },
  });
  meter.drawFrom(request);
  meter.resume();
  for (let sent = 0; sent < 20; sent++) {
    request.write(Buffer.from([sent]));
    await sleep(20);
  }
  assert.equal(meter.interruption, undefined);
  request.end();
  await once(meter, 'end');
  assert.equal(meter.bytesSeen, 20);
});
