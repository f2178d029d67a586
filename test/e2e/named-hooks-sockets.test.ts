import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { eventually } from '../support/eventually.ts';
import { send, tus } from '../support/http.ts';
import { closeNow, listenOnLoopback } from '../support/loopback-server.ts';
import { selfSignedCertificate } from '../support/self-signed.ts';
import { startWharf } from '../support/wharf-process.ts';

interface Gate {
  readonly url: string;
  requests(): number;
  /** TLS connections open now. */
  open(): number;
  /** TLS connections ever made. */
  connections(): number;
  /** The next request is held unanswered until `release`; resolves once it is. */
  hold(): Promise<void>;
  release(): void;
  close(): Promise<void>;
}

/** An https hook target that allows every upload and keeps connections alive for a minute. */
async function gate(tls: { key: Buffer; cert: Buffer }): Promise<Gate> {
  let requests = 0;
  let connections = 0;
  const sockets = new Set<Socket>();
  let holding: (() => void) | undefined;
  const held: ServerResponse[] = [];
  const server = createHttpsServer(tls, (request, response) => {
    request.resume();
    request.on('end', () => {
      if (holding !== undefined) {
        held.push(response);
        holding();
        holding = undefined;
        return;
      }
      requests++;
      response.writeHead(200).end();
    });
  });
  // Longer than the test: a connection that closes was closed by Wharf, not by the target's keep-alive timeout.
  server.keepAliveTimeout = 60_000;
  server.on('secureConnection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listenOnLoopback(server);
  return {
    url: `https://127.0.0.1:${port}/gate`,
    requests: () => requests,
    open: () => sockets.size,
    connections: () => connections,
    hold: () => new Promise<void>((resolve) => (holding = resolve)),
    release: () => {
      for (const response of held.splice(0)) {
        requests++;
        response.writeHead(200).end();
      }
    },
    close: () => closeNow(server),
  };
}

const config = (url: string, args = '{}') => `hooks:
  gate:
    transport: http
    url: ${url}
endpoints:
  - path: /files
    hooks:
      - hook: gate
        events: [pre-create]
        args: ${args}
`;

it('SIGHUP replacing an https named hook: a pre-create in flight still gets its answer, then the old connection closes; the new hook keeps its own', async () => {
  const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-named-sockets-'));
  const tls = await selfSignedCertificate(scratch);
  const [before, after] = [await gate(tls), await gate(tls)];
  const configFile = path.join(scratch, 'wharf.yaml');
  await writeFile(configFile, config(before.url));
  const wharf = await startWharf({
    args: ['--config', configFile],
    env: { NODE_EXTRA_CA_CERTS: tls.certFile },
  });
  const create = () => send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
  try {
    assert.equal((await create()).status, 201);
    assert.deepEqual([before.requests(), before.open()], [1, 1], 'positive control: the connection is kept');

    // A creation waits on the gate's answer while the file moves the gate elsewhere and is reloaded.
    const held = before.hold();
    const inFlight = create();
    await held;
    await writeFile(configFile, config(after.url));
    wharf.child.kill('SIGHUP');
    await eventually(
      () => (wharf.logs.some((line) => line.msg === 'configuration reloaded') ? true : undefined),
      'the reload',
    );
    assert.equal(before.open(), 1, 'the connection of the delivery in flight is not cut');
    before.release();
    assert.equal((await inFlight).status, 201, 'the creation in flight got its answer');
    await eventually(() => (before.open() === 0 ? true : undefined), 'the old connection closed');

    for (let round = 0; round < 2; round++) assert.equal((await create()).status, 201);
    assert.deepEqual([after.requests(), after.open()], [2, 1], 'the new gate: both on one kept connection');
    assert.equal(before.requests(), 2);
  } finally {
    await wharf.stop();
    await Promise.all([before.close(), after.close()]);
    await rm(scratch, { recursive: true, force: true });
  }
});

it('an admin API change and a SIGHUP that leave the https named hook as it was keep its transport: no new connection', async () => {
  const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-named-sockets-'));
  const tls = await selfSignedCertificate(scratch);
  const target = await gate(tls);
  const configFile = path.join(scratch, 'wharf.yaml');
  await writeFile(configFile, config(target.url));
  const token = 'named-sockets-token';
  const wharf = await startWharf({
    args: ['--config', configFile, '--admin', '--admin-token', token],
    env: { NODE_EXTRA_CA_CERTS: tls.certFile },
  });
  const create = () => send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
  try {
    assert.equal((await create()).status, 201);
    assert.deepEqual(
      [target.requests(), target.connections()],
      [1, 1],
      'positive control: one kept connection',
    );

    // Another binding of the gate through the admin API: every named hook's set is replaced, the gate's is not.
    const bound = await send('POST', `${wharf.origin}/admin/api/bindings`, {
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ endpoint: '/files', hook: 'gate', events: ['pre-terminate'] }),
    });
    assert.equal(bound.status, 201, bound.text);
    assert.equal((await create()).status, 201);
    // A reload whose file changes only the binding's args.
    await writeFile(configFile, config(target.url, '{ round: 2 }'));
    wharf.child.kill('SIGHUP');
    await eventually(
      () => (wharf.logs.some((line) => line.msg === 'configuration reloaded') ? true : undefined),
      'the reload',
    );
    assert.equal((await create()).status, 201);
    assert.equal(target.requests(), 3);
    assert.deepEqual([target.connections(), target.open()], [1, 1], 'still the first connection');
  } finally {
    await wharf.stop();
    await target.close();
    await rm(scratch, { recursive: true, force: true });
  }
});
