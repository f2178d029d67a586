import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WharfError } from '../errors.ts';

/** What a connection is doing: answers still going out, and a refusal that waits for them. */
interface ConnectionState {
  answering: number;
  refusal: string | undefined;
}

function refusalFor(error: NodeJS.ErrnoException): string {
  const refusal = new WharfError(
    error.code === 'HPE_HEADER_OVERFLOW' ? 'ERR_HEADERS_TOO_LARGE' : 'ERR_MALFORMED_REQUEST',
  );
  const reason = refusal.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  const body = `${refusal.code}: ${refusal.message}\n`;
  return (
    `HTTP/1.1 ${refusal.status} ${reason}\r\nTus-Resumable: 1.0.0\r\nContent-Type: text/plain; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/**
 * Answers a request Node's parser refuses (a bad method, a malformed header, headers past --max-header-size) with
 * a framed error carrying a code, then closes. Node's own handler writes its bare 400 only on a connection that has
 * answered nothing yet and destroys a kept-alive one silently, which a client reads as a network failure. The
 * refusal waits for the answers still going out on the connection, so it never cuts into one.
 */
export function answerClientErrors(server: Server): void {
  const connections = new WeakMap<Duplex, ConnectionState>();
  const stateOf = (socket: Duplex): ConnectionState => {
    let state = connections.get(socket);
    if (state === undefined) {
      state = { answering: 0, refusal: undefined };
      connections.set(socket, state);
    }
    return state;
  };
  const track = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    const state = stateOf(socket);
    state.answering += 1;
    let done = false;
    const answered = (): void => {
      if (done) return;
      done = true;
      state.answering -= 1;
      if (state.answering === 0 && state.refusal !== undefined && socket.writable) socket.end(state.refusal);
    };
    res.once('finish', answered);
    res.once('close', answered);
  };
  server.prependListener('request', track);
  server.prependListener('checkContinue', track);
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (!socket.writable || typeof error.code !== 'string' || !error.code.startsWith('HPE_')) {
      socket.destroy();
      return;
    }
    const state = stateOf(socket);
    state.refusal = refusalFor(error);
    if (state.answering === 0) socket.end(state.refusal);
  });
}
