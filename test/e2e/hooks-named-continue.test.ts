import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { send, tus } from '../support/http.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const token = `admin-${randomUUID()}`;

interface EventSummary {
  event: string;
  status: string;
  runs: { target: string; status: string; exitCode?: number; warning?: boolean }[];
}

async function preCreate(wharf: WharfProcess, uploadId: string): Promise<EventSummary> {
  for (let waited = 0; waited < 10_000; waited += 100) {
    const reply = await send('GET', `${wharf.origin}/admin/api/events?uploadId=${uploadId}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(reply.status, 200, reply.text);
    const { events } = JSON.parse(reply.text) as { events: EventSummary[] };
    const found = events.find((event) => event.event === 'pre-create');
    if (found !== undefined && found.runs.length === 3) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the pre-create event of ${uploadId} was never recorded`);
}

describe('continueOnFailure (Borgitory): a failing hook is recorded, later hooks run, the operation goes on', () => {
  let scratch: string;
  let wharf: WharfProcess;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'wharf-named-continue-'));
    await writeFile(
      path.join(scratch, 'wharf.yaml'),
      `hooks:
  db-dump:
    transport: file
    shell: true
    continueOnFailure: true
    command: 'echo "pg_dump: connection refused" >&2; exit 3'
  stop-service:
    transport: file
    shell: true
    cwd: .
    command: 'echo "$WHARF_UPLOAD_ID" >> ran.txt'
  disk-space:
    transport: file
    shell: true
    command: 'grep -q big || exit 0; echo "no space" >&2; exit 1'
endpoints:
  - path: /files
    hooks:
      - { hook: db-dump, events: [pre-create] }
      - { hook: stop-service, events: [pre-create] }
      - { hook: disk-space, events: [pre-create] }
`,
    );
    wharf = await startWharf({
      args: ['--config', path.join(scratch, 'wharf.yaml'), '--admin', '--admin-token', token],
    });
  });
  after(async () => {
    await wharf.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('the upload is created with a warning naming the failed hook, and the next hook ran', async () => {
    const created = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.headers['wharf-hooks'], 'completed with warnings; failed=db-dump');
    const id = String(created.headers.location).split('/').pop() ?? '';
    assert.equal((await readFile(path.join(scratch, 'ran.txt'), 'utf8')).trim(), id);
    const event = await preCreate(wharf, id);
    assert.deepEqual(
      event.runs.map((run) => [run.status, run.exitCode]),
      [
        ['failed', 3],
        ['completed', 0],
        ['completed', 0],
      ],
    );
    // Completed with warnings: an event status of its own, not `failed`, and a filter of the admin API.
    assert.equal(event.status, 'completed_with_warnings');
    assert.equal(event.runs[0]?.warning, true);
    const reply = await send('GET', `${wharf.origin}/admin/api/events?status=completed_with_warnings`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(reply.status, 200, reply.text);
    const listed = (JSON.parse(reply.text) as { events: { eventId: string; uploadId: string }[] }).events;
    assert.ok(listed.some((found) => found.uploadId === id));
  });

  it('a critical hook that also says continueOnFailure is refused at start', async () => {
    const bad = path.join(scratch, 'both.yaml');
    await writeFile(
      bad,
      `hooks:
  db-dump:
    transport: file
    shell: true
    critical: true
    continueOnFailure: true
    command: pg_dump mydb > /tmp/db.sql
endpoints:
  - path: /files
    hooks: [{ hook: db-dump, events: [pre-create] }]
`,
    );
    await assert.rejects(startWharf({ args: ['--config', bad] }), (error: Error) => {
      assert.match(error.message, /wharf exited with 2/);
      assert.match(error.message, /hooks\.db-dump\.continueOnFailure: a critical hook stops the operation/);
      return true;
    });
  });
});
