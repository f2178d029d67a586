import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { adminClient } from '../support/admin-api.ts';
import { eventually } from '../support/eventually.ts';
import { HookReceiver } from '../support/hook-receiver.ts';
import { patchInTwoParts, send, tus } from '../support/http.ts';
import { deleteRedisKeys, dropPostgresSchema, postgresUrl, redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

const token = `admin-${randomUUID()}`;

async function linesOf(file: string): Promise<string[]> {
  try {
    return (await readFile(file, 'utf8')).split('\n').filter((line) => line !== '');
  } catch {
    return [];
  }
}

/**
 * RESTHeart's model: the configuration file declares the hooks (its named singletons), the run-time metadata
 * binds them. `snooper` logs `<args> <event> <upload id>`; it is bound to nothing in the file.
 */
async function writeConfig(folder: string, log: string): Promise<string> {
  const file = path.join(folder, 'wharf.yaml');
  await writeFile(
    file,
    `hooks:
  snooper:
    transport: file
    shell: true
    command: 'echo "$WHARF_HOOK_ARGS $1 $WHARF_UPLOAD_ID" >> ${log}'
endpoints:
  - path: /files
`,
  );
  return file;
}

/** A Wharf with the snooper config of `scratch`, the admin API on (the test token) and private hook targets allowed. */
async function adminArgs(scratch: string): Promise<string[]> {
  return [
    '--config',
    await writeConfig(scratch, path.join(scratch, 'snooper.log')),
    '--admin',
    '--admin-token',
    token,
    '--hooks-allow-private-targets',
  ];
}

async function create(wharf: WharfProcess): Promise<string> {
  const created = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 3 } });
  assert.equal(created.status, 201, created.text);
  return String(created.headers.location).split('/').pop() ?? '';
}

const admin = adminClient(token);

/**
 * Two instances on one shared store: a binding made through one is used by the other for the next request, a
 * change replaces it, a deletion removes it; validation answers 422 with --config's messages.
 */
function sharedStoreSuite(name: string, storeArgs: () => string[], cleanup: () => Promise<void>) {
  // Its tests share two instances and go in turn (not inherited from the concurrent describe around it).
  describe(`named hooks changed through the admin API, two instances on ${name}`, {
    concurrency: false,
  }, () => {
    let scratch: string;
    let log: string;
    let a: WharfProcess;
    let b: WharfProcess;
    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'wharf-runtime-hooks-'));
      log = path.join(scratch, 'snooper.log');
      const config = await writeConfig(scratch, log);
      const args = ['--config', config, '--admin', '--admin-token', token, ...storeArgs()];
      [a, b] = (await Promise.all([startWharf({ args }), startWharf({ args })])) as [
        WharfProcess,
        WharfProcess,
      ];
    });
    after(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await cleanup();
      await rm(scratch, { recursive: true, force: true });
    });

    it('a binding created through one instance runs on the other for requests that start after it', async () => {
      const before = await create(b);
      const added = await admin(a, 'POST', 'bindings', {
        endpoint: '/files',
        hook: 'snooper',
        events: ['pre-create'],
        args: { collection: 'invoices' },
      });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      const bindingId = String(added.body.id);
      const afterCreate = await create(b);
      // Blocking hook: its line is written before the creation answers.
      let lines = await linesOf(log);
      assert.ok(lines.includes(`{"collection":"invoices"} pre-create ${afterCreate}`), lines.join('\n'));
      assert.ok(!lines.some((line) => line.endsWith(before)), 'a request before the change ran without it');

      // Replaced through b, used by a at once.
      const replaced = await admin(b, 'PUT', `bindings/${bindingId}`, {
        endpoint: '/files',
        hook: 'snooper',
        events: ['pre-create'],
        args: { collection: 'orders' },
      });
      assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
      const afterReplace = await create(a);
      lines = await linesOf(log);
      assert.ok(lines.includes(`{"collection":"orders"} pre-create ${afterReplace}`), lines.join('\n'));

      const listed = await admin(b, 'GET', 'hooks');
      assert.equal(listed.status, 200);
      assert.deepEqual(
        (listed.body.bindings as { source: string; id?: string }[])
          .filter((item) => item.source === 'admin')
          .map((item) => item.id),
        [bindingId],
      );

      // Deleted through a, gone on b.
      assert.equal((await admin(a, 'DELETE', `bindings/${bindingId}`)).status, 204);
      const afterDelete = await create(b);
      lines = await linesOf(log);
      assert.ok(!lines.some((line) => line.endsWith(afterDelete)), lines.join('\n'));
      assert.equal(
        (await admin(b, 'DELETE', `bindings/${bindingId}`)).body.code,
        'ERR_ADMIN_BINDING_NOT_FOUND',
      );
    });

    it('a change never reaches a request in flight on the other instance', async () => {
      const body = Buffer.alloc(32 * 1024, 1);
      const created = await send('POST', b.endpoint, { headers: { ...tus, 'Upload-Length': body.length } });
      assert.equal(created.status, 201, created.text);
      const inFlight = String(created.headers.location).split('/').pop() ?? '';
      const patch = patchInTwoParts(`${b.endpoint}${inFlight}`, body, 1024);
      // The PATCH is being handled (its first bytes are on disk) when the binding is added through a.
      await eventually(async () => {
        const stored = await stat(path.join(b.dataDir, inFlight)).catch(() => undefined);
        return stored !== undefined && stored.size > 0 ? true : undefined;
      }, 'the first bytes of the PATCH');
      const added = await admin(a, 'POST', 'bindings', {
        endpoint: '/files',
        hook: 'snooper',
        events: ['post-finish'],
        args: { late: true },
      });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      // A request that starts on b after the change (an upload sent whole in its creation) runs it, while the
      // PATCH is still open (the positive control; b now knows the new set) ...
      const whole = await send('POST', b.endpoint, {
        headers: { ...tus, 'Upload-Length': 3, 'Content-Type': 'application/offset+octet-stream' },
        body: 'abc',
      });
      assert.equal(whole.status, 201, whole.text);
      const wholeId = String(whole.headers.location).split('/').pop() ?? '';
      await eventually(
        async () =>
          (await linesOf(log)).includes(`{"late":true} post-finish ${wholeId}`) ? true : undefined,
        'the post-finish of the upload after the change',
      );
      assert.equal(await patch.finish(), 204);
      // Its record says complete: its post-finish was emitted before the answer.
      const head = await send('HEAD', `${b.endpoint}${inFlight}`, { headers: tus });
      assert.equal(head.headers['upload-offset'], String(body.length));
      // A marker upload after it: once its hooks ran, the PATCH's post-finish has had its turn too.
      const marker = await send('POST', b.endpoint, {
        headers: { ...tus, 'Upload-Length': 1, 'Content-Type': 'application/offset+octet-stream' },
        body: 'z',
      });
      const markerId = String(marker.headers.location).split('/').pop() ?? '';
      await eventually(
        async () =>
          (await linesOf(log)).some((line) => line.endsWith(`post-finish ${markerId}`)) ? true : undefined,
        'the marker upload',
      );
      // ... the upload in flight did not.
      assert.ok(!(await linesOf(log)).some((line) => line.endsWith(`post-finish ${inFlight}`)));
      assert.equal((await admin(a, 'DELETE', `bindings/${String(added.body.id)}`)).status, 204);
    });

    it('bad input is refused with its own code and the messages --config gives; nothing stored changes', async () => {
      const invalid = await admin(a, 'POST', 'bindings', {
        endpoint: '/files',
        hook: 'snooper',
        events: ['pre-upload'],
        when: { colour: 'blue' },
      });
      assert.equal(invalid.status, 422);
      assert.equal(invalid.body.code, 'ERR_ADMIN_HOOK_INVALID');
      const problems = (invalid.body.problems as string[]).join('\n');
      assert.match(
        problems,
        /\.when: unknown condition "colour" \(expected event, method, size, endpoint, status/,
      );
      assert.match(problems, /\.events: unknown event "pre-upload"/);
      const unknownHook = await admin(a, 'POST', 'bindings', {
        endpoint: '/files',
        hook: 'nope',
        events: ['post-finish'],
      });
      assert.equal(unknownHook.status, 422);
      assert.match(
        (unknownHook.body.problems as string[])[0] ?? '',
        /\.hook: names no declared hook \(declared: snooper\)/,
      );
      const shell = await admin(a, 'PUT', 'hooks/backup', {
        transport: 'file',
        shell: true,
        command: 'pg_dump db > x',
      });
      assert.equal(shell.status, 422);
      assert.equal(shell.body.code, 'ERR_ADMIN_HOOK_TRANSPORT');
      const configured = await admin(a, 'PUT', 'hooks/snooper', {
        transport: 'http',
        url: 'http://127.0.0.1:9/hook',
      });
      assert.equal(configured.status, 409);
      assert.equal(configured.body.code, 'ERR_ADMIN_HOOK_CONFIGURED');
      const badHook = await admin(a, 'PUT', 'hooks/notify-team', {
        transport: 'notify',
        service: 'telegram',
        url: 'http://127.0.0.1:9/x',
      });
      assert.equal(badHook.status, 422);
      assert.match(
        (badHook.body.problems as string[]).join('\n'),
        /hooks\.notify-team\.service: expected one of slack, discord, teams, ntfy, json/,
      );
      // Nothing was stored: the next upload on b runs no snooper.
      const id = await create(b);
      assert.ok(!(await linesOf(log)).some((line) => line.endsWith(id)));
    });
  });
}

const prefix = `test-runtime-hooks-${randomUUID()}:`;
const schema = `test_runtime_hooks_${randomUUID().replaceAll('-', '').slice(0, 16)}`;

// The four suites at once: each has its own store (key prefix, schema or folder) and instances.
describe('hooks changed at run time', { concurrency: true }, () => {
  sharedStoreSuite(
    'one Redis',
    () => ['--info-storage', 'redis-info-storage', '--info-db-dsn', redisUrl, '--redis-key-prefix', prefix],
    () => deleteRedisKeys(prefix),
  );

  sharedStoreSuite(
    'one PostgreSQL',
    () => ['--info-storage', 'db-info-storage', '--info-db-dsn', postgresUrl, '--postgres-schema', schema],
    () => dropPostgresSchema(schema),
  );

  describe('named hooks changed through the admin API, file info storage: kept across a restart', {
    concurrency: false,
  }, () => {
    it('a binding made before a restart is listed and runs after it', async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-runtime-file-'));
      const dataDir = path.join(scratch, 'data');
      const log = path.join(scratch, 'snooper.log');
      const args = ['--config', await writeConfig(scratch, log), '--admin', '--admin-token', token];
      try {
        const first = await startWharf({ args, dataDir });
        const added = await admin(first, 'POST', 'bindings', {
          endpoint: '/files',
          hook: 'snooper',
          events: ['post-create'],
          args: { kept: true },
        });
        assert.equal(added.status, 201, JSON.stringify(added.body));
        await first.stop();
        const second = await startWharf({ args, dataDir });
        try {
          const listed = await admin(second, 'GET', 'bindings');
          assert.equal((listed.body.bindings as { id?: string }[]).at(-1)?.id, added.body.id);
          const id = await create(second);
          await eventually(
            async () => ((await linesOf(log)).includes(`{"kept":true} post-create ${id}`) ? true : undefined),
            'the post-create of the stored binding',
          );
        } finally {
          await second.stop();
        }
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });

  describe('a hook declared through the admin API (http), bound to post events', {
    concurrency: false,
  }, () => {
    it('receives the post-create of uploads after the binding; a pre-* binding of it is refused; delete frees it', async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-runtime-http-'));
      const receiver = new HookReceiver();
      await receiver.start();
      const args = await adminArgs(scratch);
      const wharf = await startWharf({ args });
      try {
        const created = await admin(wharf, 'PUT', 'hooks/crm', {
          transport: 'http',
          url: receiver.url,
          args: { team: 'sales' },
        });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const blocking = await admin(wharf, 'POST', 'bindings', {
          endpoint: '/files',
          hook: 'crm',
          events: ['pre-create'],
        });
        assert.equal(blocking.status, 400);
        assert.equal(blocking.body.code, 'ERR_ADMIN_TARGET_EVENT');
        const bound = await admin(wharf, 'POST', 'bindings', {
          endpoint: '/files',
          hook: 'crm',
          events: ['post-create'],
        });
        assert.equal(bound.status, 201, JSON.stringify(bound.body));
        const inUse = await admin(wharf, 'DELETE', 'hooks/crm');
        assert.equal(inUse.status, 409);
        assert.equal(inUse.body.code, 'ERR_ADMIN_HOOK_IN_USE');
        const id = await create(wharf);
        await receiver.waitUntil(
          (received) =>
            received.some((hook) => (hook.payload.upload as { id?: string } | undefined)?.id === id),
          'the post-create of the upload',
        );
        const delivered = receiver.received.find(
          (hook) => (hook.payload.upload as { id?: string } | undefined)?.id === id,
        );
        assert.ok(delivered !== undefined);
        const section = delivered.payload.hook as { name: string; args: unknown };
        assert.equal(section.name, 'crm');
        assert.deepEqual(section.args, { team: 'sales' });
        assert.equal((await admin(wharf, 'DELETE', `bindings/${String(bound.body.id)}`)).status, 204);
        assert.equal((await admin(wharf, 'DELETE', 'hooks/crm')).status, 204);
        assert.equal((await admin(wharf, 'DELETE', 'hooks/crm')).body.code, 'ERR_ADMIN_HOOK_NOT_FOUND');
      } finally {
        await wharf.stop();
        await receiver.close();
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });
});

describe('the named hooks list shows the URL of a hook made through the admin API as a label', {
  concurrency: false,
}, () => {
  it('no user info, path or query of the URL (where secrets live) in GET /admin/api/hooks, as for targets', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-runtime-label-'));
    const wharf = await startWharf({
      args: await adminArgs(scratch),
    });
    try {
      const url = 'http://crm:hunter2@127.0.0.1:9/hooks/T0001/secret-path?token=abc123';
      const created = await admin(wharf, 'PUT', 'hooks/crm', { transport: 'http', url });
      assert.equal(created.status, 201, created.text);
      const listed = await admin(wharf, 'GET', 'hooks');
      assert.equal(listed.status, 200);
      const crm = (listed.body.hooks as { name: string; source: string; url?: string }[]).find(
        (hook) => hook.name === 'crm',
      );
      assert.equal(crm?.source, 'admin', listed.text);
      assert.match(String(crm?.url), /^http:\/\/127\.0\.0\.1:9 \([0-9a-f]{8}\)$/);
      for (const secret of ['hunter2', 'crm:', 'abc123', 'secret-path', 'T0001']) {
        assert.ok(!listed.text.includes(secret), `${secret} in ${listed.text}`);
      }
    } finally {
      await wharf.stop();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});

/**
 * A hook the engine could not build (an http URL whose user name is not percent-decodable: the URL parses, the
 * HTTP client cannot use it) is refused with 422 naming it, by validation since the config file refuses it too
 * (the engine's check before a write stays behind it for what validation does not see), and nothing is stored: the
 * store's version stays 0, the next upload is served (not 503 ERR_NAMED_HOOKS_UNFIT), and a valid change after
 * it is the store's first (the positive control).
 */
function unbuildableSuite(name: string, storeArgs: () => string[], cleanup: () => Promise<void>) {
  describe(`a hook the engine cannot build is refused and not stored (${name})`, {
    concurrency: false,
  }, () => {
    it('answers 422 ERR_ADMIN_HOOK_INVALID naming the hook; the store keeps version 0; uploads are served', async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-runtime-unbuildable-'));
      const receiver = new HookReceiver();
      await receiver.start();
      const wharf = await startWharf({
        args: [...(await adminArgs(scratch)), ...storeArgs()],
      });
      try {
        const unbuildable = new URL(receiver.url);
        unbuildable.username = '%zz';
        const refused = await admin(wharf, 'PUT', 'hooks/crm', { transport: 'http', url: unbuildable.href });
        assert.equal(refused.status, 422, JSON.stringify(refused.body));
        assert.equal(refused.body.code, 'ERR_ADMIN_HOOK_INVALID');
        assert.match(
          (refused.body.problems as string[]).join('\n'),
          /^hooks\.crm\.url: its user name or password is not valid percent-encoding/,
        );
        const listed = await admin(wharf, 'GET', 'hooks');
        assert.equal(listed.status, 200);
        assert.equal(listed.body.version, 0, JSON.stringify(listed.body));
        assert.ok(!(listed.body.hooks as { name: string }[]).some((hook) => hook.name === 'crm'));
        assert.equal(listed.body.problems, undefined);
        // Served: nothing unfit was stored.
        await create(wharf);
        const health = await send('GET', `${wharf.origin}/health`);
        assert.equal(health.status, 200, health.text);

        const created = await admin(wharf, 'PUT', 'hooks/crm', { transport: 'http', url: receiver.url });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        assert.equal((await admin(wharf, 'GET', 'hooks')).body.version, 1);
      } finally {
        await wharf.stop();
        await receiver.close();
        await cleanup();
        await rm(scratch, { recursive: true, force: true });
      }
    });
  });
}

const unbuildablePrefix = `test-runtime-unbuildable-${randomUUID()}:`;
const unbuildableSchema = `test_runtime_unbuildable_${randomUUID().replaceAll('-', '').slice(0, 12)}`;

describe('changes the engine cannot build', { concurrency: true }, () => {
  unbuildableSuite(
    'file info storage',
    () => [],
    async () => undefined,
  );
  unbuildableSuite(
    'Redis',
    () => [
      '--info-storage',
      'redis-info-storage',
      '--info-db-dsn',
      redisUrl,
      '--redis-key-prefix',
      unbuildablePrefix,
    ],
    () => deleteRedisKeys(unbuildablePrefix),
  );
  unbuildableSuite(
    'PostgreSQL',
    () => [
      '--info-storage',
      'db-info-storage',
      '--info-db-dsn',
      postgresUrl,
      '--postgres-schema',
      unbuildableSchema,
    ],
    () => dropPostgresSchema(unbuildableSchema),
  );
});
