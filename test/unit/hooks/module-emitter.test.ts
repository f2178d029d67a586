import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModuleEventBus } from '../../../src/hooks/modules/emitter.ts';
import type { ModuleLogger } from '../../../src/hooks/modules/types.ts';

function recordingLogger(): ModuleLogger & { errors: Record<string, unknown>[] } {
  const errors: Record<string, unknown>[] = [];
  return { errors, info() {}, warn() {}, debug() {}, error: (object) => errors.push(object) };
}

describe('the modules event bus (context.emitter)', () => {
  it('delivers an event from one module to another; once runs once; a disposer and off remove', async () => {
    const bus = new ModuleEventBus(recordingLogger());
    const a = bus.forModule('a');
    const b = bus.forModule('b');
    const heard: string[] = [];
    const dispose = b.on('scan.done', (id) => heard.push(`on ${String(id)}`));
    b.once('scan.done', (id) => heard.push(`once ${String(id)}`));
    const listener = (id: unknown): void => {
      heard.push(`off ${String(id)}`);
    };
    b.on('scan.done', listener);
    assert.equal(await a.emit('scan.done', 1), 3);
    assert.equal(b.off('scan.done', listener), true);
    assert.equal(await a.emit('scan.done', 2), 1);
    dispose();
    assert.equal(await a.emit('scan.done', 3), 0);
    assert.deepEqual(heard, ['on 1', 'once 1', 'off 1', 'on 2']);
  });

  it('a throwing or rejecting listener is logged with its module; the emitter and later listeners go on', async () => {
    const logger = recordingLogger();
    const bus = new ModuleEventBus(logger);
    const heard: string[] = [];
    bus.forModule('broken').on('x', () => {
      throw new Error('boom');
    });
    bus.forModule('async-broken').on('x', async () => {
      throw new Error('later boom');
    });
    bus.forModule('fine').on('x', () => heard.push('fine'));
    assert.equal(await bus.forModule('sender').emit('x'), 3);
    assert.deepEqual(heard, ['fine']);
    assert.deepEqual(
      logger.errors.map((line) => [line.module, line.event, line.error]),
      [
        ['broken', 'x', 'boom'],
        ['async-broken', 'x', 'later boom'],
      ],
    );
  });

  it('close (shutdown) removes every listener and later registrations', async () => {
    const bus = new ModuleEventBus(recordingLogger());
    const heard: string[] = [];
    bus.forModule('a').on('x', () => heard.push('before'));
    assert.equal(await bus.forModule('b').emit('x'), 1);
    bus.close();
    bus.forModule('a').on('x', () => heard.push('after'));
    assert.equal(await bus.forModule('b').emit('x'), 0);
    assert.deepEqual(heard, ['before']);
  });
});
