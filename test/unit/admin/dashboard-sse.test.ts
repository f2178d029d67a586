import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ServerSentEventParser } from '../../../src/server/admin/dashboard/sse.ts';

describe('the dashboard event-stream parser', () => {
  it('dispatches an event at the blank line, with its type and data', () => {
    const parser = new ServerSentEventParser();
    assert.deepEqual(parser.push('event: run\ndata: {"a":1}\n'), []);
    assert.deepEqual(parser.push('\n'), [{ type: 'run', data: '{"a":1}', lastEventId: '' }]);
  });

  it('joins data lines, skips comments, and defaults the type to message', () => {
    const parser = new ServerSentEventParser();
    const events = parser.push(': ping\n\ndata: one\ndata:two\nid: 7\n\nevent: upload\ndata: x\n\n');
    assert.deepEqual(events, [
      { type: 'message', data: 'one\ntwo', lastEventId: '7' },
      { type: 'upload', data: 'x', lastEventId: '7' },
    ]);
  });

  it('takes CRLF, CR and LF line ends, also when a CRLF is split between chunks', () => {
    const parser = new ServerSentEventParser();
    assert.deepEqual(parser.push('event: notice\r'), []);
    assert.deepEqual(parser.push('\ndata: a\r\r'), [{ type: 'notice', data: 'a', lastEventId: '' }]);
    assert.deepEqual(parser.push('\ndata: b\r\n\r\n'), [{ type: 'message', data: 'b', lastEventId: '' }]);
  });

  it('keeps a line cut in the middle of a field until its end arrives', () => {
    const parser = new ServerSentEventParser();
    const text = 'event: run\ndata: {"eventId":"e1","status":"failed"}\n\n';
    const events = [...text].flatMap((character) => parser.push(character));
    assert.deepEqual(events, [{ type: 'run', data: '{"eventId":"e1","status":"failed"}', lastEventId: '' }]);
  });

  it('drops an event with no data line', () => {
    const parser = new ServerSentEventParser();
    assert.deepEqual(parser.push('event: run\n\n'), []);
    assert.deepEqual(parser.push('data: after\n\n'), [{ type: 'message', data: 'after', lastEventId: '' }]);
  });
});
