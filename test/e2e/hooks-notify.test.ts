import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUpload, octets, send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

/** `transport: notify` named hooks post a templated message to local stand-ins of each service (127.0.0.1). */

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

describe('notify hooks (Slack, Discord, Teams, ntfy, JSON webhook)', () => {
  let scratch: string;
  let wharf: WharfProcess;
  let server: Server;
  const received: Received[] = [];
  let flakyCalls = 0;

  before(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const url = req.url ?? '';
        if (url === '/flaky' && ++flakyCalls === 1) {
          res.statusCode = 503;
          res.end('not yet');
          return;
        }
        received.push({ path: url, headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-notify-'));
    const template =
      '{{upload.metadata.filename}} finished ({{upload.length}} bytes){{upload.metadata.missing}}';
    const hook = (service: string, route: string) => ({
      transport: 'notify',
      service,
      url: `${base}${route}`,
      template,
    });
    const config = {
      hooks: {
        slack: hook('slack', '/slack'),
        discord: hook('discord', '/discord'),
        teams: { ...hook('teams', '/teams'), title: 'Upload {{upload.id}}' },
        ntfy: { ...hook('ntfy', '/ntfy'), title: 'Wharf upload' },
        json: { ...hook('json', '/flaky'), retrySchedule: ['100ms'] },
      },
      endpoints: [
        {
          path: '/files',
          hooks: ['slack', 'discord', 'teams', 'ntfy', 'json'].map((name) => ({
            hook: name,
            events: ['post-finish'],
          })),
        },
      ],
    };
    const file = path.join(scratch, 'wharf.json');
    await writeFile(file, JSON.stringify(config));
    wharf = await startWharf({ args: ['--config', file] });
  });
  after(async () => {
    await wharf?.stop();
    server?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it("each service gets its documented body; the JSON webhook's failed first try is retried by the outbox", async () => {
    const meta = `filename ${Buffer.from('report.pdf').toString('base64')}`;
    const url = await createUpload(wharf.endpoint, { 'Upload-Length': 5, 'Upload-Metadata': meta });
    const id = url.replace(/\/$/, '').split('/').pop();
    const patch = await send('PATCH', url, {
      headers: { ...tus, ...octets, 'Upload-Offset': 0 },
      body: 'hello',
    });
    assert.equal(patch.status, 204);
    const deadline = Date.now() + 15_000;
    while (received.length < 5 && Date.now() < deadline) await sleep(50);
    const at = (route: string): Received => {
      const found = received.find((call) => call.path === route);
      assert.ok(found, `nothing posted to ${route}: ${JSON.stringify(received.map((call) => call.path))}`);
      return found;
    };
    const message = 'report.pdf finished (5 bytes)';
    assert.deepEqual(JSON.parse(at('/slack').body), { text: message });
    assert.equal(at('/slack').headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(at('/discord').body), { content: message });
    const teams = JSON.parse(at('/teams').body);
    assert.equal(teams.type, 'message');
    assert.equal(teams.attachments[0].contentType, 'application/vnd.microsoft.card.adaptive');
    assert.deepEqual(
      teams.attachments[0].content.body.map((block: { text: string }) => block.text),
      [`Upload ${id}`, message],
    );
    assert.equal(at('/ntfy').body, message);
    assert.equal(at('/ntfy').headers.title, 'Wharf upload');
    assert.match(String(at('/ntfy').headers['content-type']), /^text\/plain/);
    assert.deepEqual(JSON.parse(at('/flaky').body), { message });
    assert.equal(flakyCalls, 2);
  });
});
