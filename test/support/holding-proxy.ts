import { randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface HoldingProxy {
  readonly server: Server;
  readonly port: number;
  /** From now on, the first command containing `pattern` (and all after it on that connection) is held. */
  holdAt(pattern: string): void;
  /** Whether the proxy is holding a connection's request bytes now. */
  holding(): boolean;
  /**
   * From now on, the first command containing `pattern` is not run; the client gets `reply` in its place, as if
   * the server had refused the command (a Redis error reply such as `-READONLY ...`).
   */
  failAt(pattern: string, reply: string): void;
  close(): Promise<void>;
}

/**
 * The length of the first whole Redis command (a RESP array of bulk strings, what clients send) at the start of
 * `bytes`, or undefined while it is incomplete.
 */
function commandLength(bytes: Buffer): number | undefined {
  const lineEnd = (from: number): number => bytes.indexOf('\r\n', from, 'latin1');
  let end = lineEnd(0);
  if (end === -1) return undefined;
  // An inline command (no `*`): one line.
  if (bytes[0] !== 0x2a) return end + 2;
  const count = Number(bytes.toString('latin1', 1, end));
  let at = end + 2;
  for (let item = 0; item < count; item++) {
    end = lineEnd(at);
    if (end === -1) return undefined;
    const length = Number(bytes.toString('latin1', at + 1, end));
    at = end + 2 + length + 2;
    if (at > bytes.length) return undefined;
  }
  return at;
}

/** A RESP command that makes the server answer with exactly `marker` (a bulk string) in the command's turn. */
function echo(marker: string): { command: Buffer; answer: Buffer } {
  return {
    command: Buffer.from(`*2\r\n$4\r\nECHO\r\n$${marker.length}\r\n${marker}\r\n`, 'latin1'),
    answer: Buffer.from(`$${marker.length}\r\n${marker}\r\n`, 'latin1'),
  };
}

/**
 * A TCP proxy to a Redis on 127.0.0.1:`targetPort` that can hold back or refuse one command. It reads the client's
 * bytes as whole commands, so only the command with the pattern is held or refused, never the commands a busy
 * client sent in the same packet before it. Held bytes are dropped when the client goes (a killed process), never
 * delivered late. A refused command is sent on as an ECHO of a marker, and the server's answer to it is replaced
 * by the refusal: the client gets every answer in the order of its commands.
 */
export async function holdingProxy(targetPort: number): Promise<HoldingProxy> {
  let pattern: string | undefined;
  let held = 0;
  let failing: { pattern: string; reply: string } | undefined;
  const sockets = new Set<Socket>();
  const server = createServer((client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let holding = false;
    // The client's bytes not yet forwarded: an incomplete command waits for the rest of it.
    let pending = Buffer.alloc(0);
    // Answers to replace (an ECHO's answer -> the refusal), and the server's bytes kept until they are found.
    const replacements: { answer: Buffer; reply: Buffer }[] = [];
    let answers = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (holding) return;
      pending = Buffer.concat([pending, chunk]);
      const forward: Buffer[] = [];
      for (let length = commandLength(pending); length !== undefined; length = commandLength(pending)) {
        const command = pending.subarray(0, length);
        pending = pending.subarray(length);
        const text = command.toString('latin1');
        if (failing !== undefined && text.includes(failing.pattern)) {
          const stand = echo(`wharf-test-refused-${randomUUID()}`);
          replacements.push({ answer: stand.answer, reply: Buffer.from(failing.reply, 'latin1') });
          failing = undefined;
          forward.push(stand.command);
          continue;
        }
        if (pattern !== undefined && text.includes(pattern)) {
          pattern = undefined;
          holding = true;
          held++;
          break;
        }
        forward.push(command);
      }
      if (forward.length > 0) upstream.write(Buffer.concat(forward));
    });
    upstream.on('data', (chunk: Buffer) => {
      if (replacements.length === 0) {
        client.write(chunk);
        return;
      }
      answers = Buffer.concat([answers, chunk]);
      for (let next = replacements[0]; next !== undefined; next = replacements[0]) {
        const at = answers.indexOf(next.answer);
        if (at === -1) return;
        replacements.shift();
        client.write(Buffer.concat([answers.subarray(0, at), next.reply]));
        answers = answers.subarray(at + next.answer.length);
      }
      client.write(answers);
      answers = Buffer.alloc(0);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      if (holding) held--;
      holding = false;
      upstream.destroy();
      sockets.delete(client);
    });
    upstream.on('close', () => {
      client.destroy();
      sockets.delete(upstream);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    server,
    port,
    holdAt: (text) => {
      pattern = text;
    },
    holding: () => held > 0,
    failAt: (text, reply) => {
      failing = { pattern: text, reply };
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
