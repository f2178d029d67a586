/**
 * A Server-Sent Events parser for streams read with fetch(): EventSource cannot send the Authorization
 * header, so the dashboard reads `/admin/api/stream` itself and feeds the decoded text here. Follows the
 * HTML "event stream interpretation" rules: lines end with CRLF, LF or CR; `:` starts a comment; a blank
 * line dispatches the event; several `data` lines are joined with LF. Pure (no DOM), so it is unit-tested
 * in Node.
 */

export interface ServerSentEvent {
  /** `message` when the event had no `event` field. */
  readonly type: string;
  readonly data: string;
  readonly lastEventId: string;
}

export class ServerSentEventParser {
  #buffer = '';
  #type = '';
  #data: string[] = [];
  #lastEventId = '';
  /** The previous chunk ended with CR: an LF at the start of the next one belongs to that line end. */
  #afterCarriageReturn = false;

  /** Feeds decoded text; returns the events it completed, in order. */
  push(text: string): ServerSentEvent[] {
    let chunk = text;
    if (this.#afterCarriageReturn && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.#afterCarriageReturn = chunk.endsWith('\r');
    this.#buffer += chunk;
    const events: ServerSentEvent[] = [];
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    for (let match = lineEnd.exec(this.#buffer); match !== null; match = lineEnd.exec(this.#buffer)) {
      // A CR at the very end may be the first half of a CRLF split across chunks: the line still ends here.
      const event = this.#line(this.#buffer.slice(start, match.index));
      if (event !== undefined) events.push(event);
      start = match.index + match[0].length;
    }
    this.#buffer = this.#buffer.slice(start);
    return events;
  }

  #line(line: string): ServerSentEvent | undefined {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#type = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.#lastEventId = value;
    // `retry` and unknown fields are ignored: the dashboard chooses its own reconnection delay.
    return undefined;
  }

  #dispatch(): ServerSentEvent | undefined {
    const type = this.#type;
    const data = this.#data;
    this.#type = '';
    this.#data = [];
    if (data.length === 0) return undefined;
    return { type: type === '' ? 'message' : type, data: data.join('\n'), lastEventId: this.#lastEventId };
  }
}
