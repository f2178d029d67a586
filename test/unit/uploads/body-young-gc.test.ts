import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { getHeapStatistics } from 'node:v8';
import { WharfError } from '../../../src/errors.ts';
import { BodyMeter } from '../../../src/uploads/body-meter.ts';
import { BodyYoungCollector, bodyYoungCollector } from '../../../src/uploads/body-young-gc.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A body of `count` chunks of 64 KiB (chunk i filled with i), each a new Buffer as the HTTP parser makes them. */
function bodyOf(count: number, onChunk: () => void = () => {}): Readable {
  let next = 0;
  return new Readable({
    read() {
      if (next === count) {
        this.push(null);
        return;
      }
      onChunk();
      this.push(Buffer.alloc(64 * KiB, next++));
    },
  });
}

async function meterDigest(meter: BodyMeter, body: Readable): Promise<{ bytes: number; sha: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  meter.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  meter.drawFrom(body);
  await once(meter, 'end');
  return { bytes, sha: hash.digest('hex') };
}

function expectedDigest(count: number): string {
  const hash = createHash('sha256');
  for (let i = 0; i < count; i++) hash.update(Buffer.alloc(64 * KiB, i));
  return hash.digest('hex');
}

test('a body asks for a minor collection each time its dead chunk buffers grew the external memory by the set amount', async () => {
  // External memory as V8 would count it: every chunk allocated and not yet collected.
  let external = 3 * MiB;
  const collections: number[] = [];
  const collector = new BodyYoungCollector(
    () => {
      collections.push(external);
      external = 3 * MiB; // the dead chunks are freed
    },
    () => external,
    { checkEveryBytes: 1 * MiB, externalGrowthBytes: 4 * MiB },
  );
  const meter = new BodyMeter({
    limit: Number.MAX_SAFE_INTEGER,
    limitError: () => new WharfError('ERR_UPLOAD_SIZE_EXCEEDED'),
    youngCollector: collector,
  });
  // 20 MiB in 64 KiB chunks, each counted as it reaches the meter.
  const body = bodyOf(320);
  body.on('data', (chunk: Buffer) => {
    external += chunk.length;
  });
  const result = await meterDigest(meter, body);
  assert.equal(result.bytes, 20 * MiB);
  assert.equal(result.sha, expectedDigest(320));
  // One collection per 4 MiB of growth, none before the first 4 MiB.
  assert.equal(collections.length, 5);
  for (const at of collections) assert.ok(at - 3 * MiB >= 4 * MiB, `collected at ${at}`);
});

test('a collection V8 ran by itself starts the growth anew, and live buffers raise the floor', () => {
  let external = 10 * MiB;
  let collections = 0;
  const collector = new BodyYoungCollector(
    () => {
      collections++;
      external = 12 * MiB; // 2 MiB of bodies still wait for the disk
    },
    () => external,
    { checkEveryBytes: 1 * MiB, externalGrowthBytes: 4 * MiB },
  );
  external = 13 * MiB;
  collector.received(1 * MiB);
  external = 2 * MiB; // V8 collected by itself
  collector.received(1 * MiB);
  external = 5 * MiB; // 3 MiB above the new floor: not yet
  collector.received(1 * MiB);
  assert.equal(collections, 0);
  external = 6 * MiB; // 4 MiB above it
  collector.received(1 * MiB);
  assert.equal(collections, 1);
  external = 15 * MiB; // 3 MiB above the floor the live buffers set (12)
  collector.received(1 * MiB);
  assert.equal(collections, 1);
  external = 16 * MiB;
  collector.received(512 * KiB); // fewer bytes than between two looks
  assert.equal(collections, 1);
  collector.received(512 * KiB);
  assert.equal(collections, 2);
});

test('with several bodies streaming, the growth that asks for a collection is per body; as bodies end it shrinks again', async () => {
  let external = 0;
  let collections = 0;
  const collector = new BodyYoungCollector(
    () => {
      collections++;
      external = 0;
    },
    () => external,
    { checkEveryBytes: 1 * MiB, externalGrowthBytes: 4 * MiB },
  );
  const meterOf = (): BodyMeter =>
    new BodyMeter({
      limit: Number.MAX_SAFE_INTEGER,
      limitError: () => new WharfError('ERR_UPLOAD_SIZE_EXCEEDED'),
      youngCollector: collector,
    });
  const grow = (mebibytes: number): void => {
    for (let step = 0; step < mebibytes; step++) {
      external += MiB;
      collector.received(MiB);
    }
  };
  // Three bodies streaming: one collection per 12 MiB.
  const bodies = [new Readable({ read() {} }), new Readable({ read() {} }), new Readable({ read() {} })];
  const meters = bodies.map((body) => {
    const meter = meterOf();
    meter.resume();
    meter.drawFrom(body);
    return meter;
  });
  grow(11);
  assert.equal(collections, 0);
  grow(1);
  assert.equal(collections, 1);
  // Two of them end (one by its end, one interrupted): one body left, a collection per 4 MiB.
  bodies[0]?.push(null);
  meters[1]?.interrupt(new WharfError('ERR_UNEXPECTED_EOF'));
  await Promise.all([once(meters[0] as BodyMeter, 'end'), once(meters[1] as BodyMeter, 'end')]);
  grow(4);
  assert.equal(collections, 2);
  meters[2]?.destroy();
});

test("the process's collector runs real minor collections that free dead chunk buffers, and leaves the global scope without gc", async () => {
  const collector = bodyYoungCollector();
  assert.ok(collector !== undefined, 'this Node runs minor collections on request');
  assert.equal((globalThis as { gc?: unknown }).gc, undefined);
  const before = getHeapStatistics().external_memory;
  let peak = before;
  const meter = new BodyMeter({
    limit: Number.MAX_SAFE_INTEGER,
    limitError: () => new WharfError('ERR_UPLOAD_SIZE_EXCEEDED'),
  });
  // 96 MiB of chunks nobody keeps. Left to itself V8 holds 32 MiB of them (Node 20, 22) or 56 MiB (24) before it
  // frees any; with a minor collection per 4 MiB of growth, about 4 MiB.
  const result = await meterDigest(
    meter,
    bodyOf(1536, () => {
      peak = Math.max(peak, getHeapStatistics().external_memory);
    }),
  );
  assert.equal(result.bytes, 96 * MiB);
  assert.equal(result.sha, expectedDigest(1536));
  assert.ok(peak - before < 16 * MiB, `external memory grew by ${((peak - before) / MiB).toFixed(1)} MiB`);
});
