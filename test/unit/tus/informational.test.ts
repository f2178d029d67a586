/**
 * sendInformational (src/tus/ietf/informational.ts) on the wire: a real node:http server, raw sockets reading
 * every byte. Node 20 has no public call for an arbitrary 1xx; these tests pin down the behaviour the chosen
 * path must keep: order before the final answer, order behind earlier pipelined answers, nothing to HTTP/1.0.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { sendInformational } from '../../../src/tus/ietf/informational.ts';
import { RawConnection } from '../../support/raw-http.ts';

let server: Server;
let port: number;
/** What each request does; chosen per test by its path. */
const handlers = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();

before(async () => {
  server = createServer((req, res) => handlers.get(req.url ?? '')?.(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('sendInformational', () => {
  test('sends 104 with its headers before the final answer; false once the final head is out', async () => {
    let late: boolean | undefined;
    handlers.set('/one', (_req, res) => {
      assert.equal(
        sendInformational(res, 104, 'Upload Resumption Supported', {
          Location: '/files/a',
          'Upload-Limit': 'min-size=0',
        }),
        true,
      );
      res.writeHead(201, { 'Content-Length': 0 });
      late = sendInformational(res, 104, 'Upload Resumption Supported', { Location: '/files/a' });
      res.end();
    });
    const connection = await RawConnection.open(port);
    try {
      const response = await connection.exchange('GET /one HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(response.status, 201);
      assert.deepEqual(response.interim, [
        {
          status: 104,
          reason: 'Upload Resumption Supported',
          headers: { location: '/files/a', 'upload-limit': 'min-size=0' },
        },
      ]);
      assert.equal(late, false, 'no 1xx after the final head');
    } finally {
      connection.close();
    }
  });

  test('waits behind the answer to an earlier pipelined request on the same connection', async () => {
    let finishFirst: (() => void) | undefined;
    handlers.set('/slow', (_req, res) => {
      finishFirst = () => res.writeHead(200, { 'Content-Length': 5 }).end('first');
    });
    handlers.set('/second', (_req, res) => {
      // Sent while /slow has not answered: it must not overtake /slow's response on the wire.
      sendInformational(res, 104, 'Upload Resumption Supported', { Location: '/files/b' });
      setImmediate(() => finishFirst?.());
      res.writeHead(201, { 'Content-Length': 0 }).end();
    });
    const connection = await RawConnection.open(port);
    try {
      connection.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n');
      const first = await connection.read();
      assert.equal(first.status, 200);
      assert.equal(first.body.toString(), 'first');
      assert.equal(first.interim.length, 0, 'no 104 before the first answer');
      const second = await connection.read();
      assert.equal(second.status, 201);
      assert.equal(second.interim[0]?.status, 104);
    } finally {
      connection.close();
    }
  });

  test('sends nothing to an HTTP/1.0 client (RFC 9110 15.2), which gets the final answer only', async () => {
    let sent: boolean | undefined;
    handlers.set('/old', (_req, res) => {
      sent = sendInformational(res, 104, 'Upload Resumption Supported', { Location: '/files/c' });
      res.writeHead(201, { 'Content-Length': 0 }).end();
    });
    const connection = await RawConnection.open(port);
    try {
      connection.write('GET /old HTTP/1.0\r\nHost: x\r\n\r\n');
      // Node answers an HTTP/1.0 request with an HTTP/1.1 status line; RawConnection reads it as usual.
      const response = await connection.read();
      assert.equal(response.status, 201);
      assert.equal(response.interim.length, 0);
      assert.equal(sent, false);
    } finally {
      connection.close();
    }
  });

  test('refuses a header value that would split the response (as setHeader does)', async () => {
    let thrown: unknown;
    handlers.set('/bad', (_req, res) => {
      try {
        sendInformational(res, 104, 'Upload Resumption Supported', { Location: '/files/d\r\nX-Evil: 1' });
      } catch (error) {
        thrown = error;
      }
      res.writeHead(204).end();
    });
    const connection = await RawConnection.open(port);
    try {
      const response = await connection.exchange('GET /bad HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(response.status, 204);
      assert.equal(response.interim.length, 0);
      assert.equal((thrown as { code?: string }).code, 'ERR_INVALID_CHAR');
    } finally {
      connection.close();
    }
  });
});
