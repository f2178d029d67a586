import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { adminClient } from '../support/admin-api.ts';
import { eventually } from '../support/eventually.ts';
import { type Reply, send, tus } from '../support/http.ts';
import { linesOf } from '../support/lines-file.ts';
import { deleteRedisKeys, dropPostgresSchema, postgresUrl, redisUrl } from '../support/services.ts';
import { logsWith, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const token = 'unfit-admin-token';

/** A file hook that logs `<name> <length>` to ran.log; `quota` also refuses uploads over 5 bytes. */
function fileHook(name: string, refusesOver?: number): string {
  const check =
    refusesOver === undefined
      ? ''
      : `; [ "$WHARF_UPLOAD_LENGTH" -le ${refusesOver} ] || { echo "over the quota" >&2; exit 1; }`;
  return `  ${name}:
    transport: file
    shell: true
    cwd: .
    command: 'echo "${name} $WHARF_UPLOAD_LENGTH" >> ran.log${check}'
`;
}

/**
 * The config the hooks were stored against: `quota` (a pre-create hook that authorises uploads of 5 bytes at
 * most) and `audit`, bound to /files through the admin API only.
 */
const storedAgainst = `hooks:\n${fileHook('quota', 5)}${fileHook('audit')}endpoints:\n  - path: /files\n`;
/**
 * The config the next start runs: `quota` is gone (a binding names it), and `crm`, a hook made through the admin
 * API, is now declared here too. Two problems, repaired one request at a time.
 */
const changed = `hooks:\n${fileHook('audit')}${fileHook('crm')}endpoints:\n  - path: /files\n`;

function create(wharf: WharfProcess, length: number): Promise<Reply> {
  return send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': length } });
}

const admin = adminClient(token);

async function health(wharf: WharfProcess): Promise<{ status: number; body: Record<string, unknown> }> {
  const reply = await send('GET', `${wharf.origin}/health`);
  return { status: reply.status, body: JSON.parse(reply.text) as Record<string, unknown> };
}

/** /health as with no named hooks problem: 200 `ok`, no `namedHooks` (backends, with Redis or PostgreSQL). */
async function assertHealthy(wharf: WharfProcess): Promise<void> {
  const { status, body } = await health(wharf);
  assert.equal(status, 200);
  assert.equal(body.status, 'ok', JSON.stringify(body));
  assert.equal(body.namedHooks, undefined);
}

function ranLog(scratch: string): Promise<string[]> {
  return linesOf(path.join(scratch, 'ran.log'));
}

interface Storage {
  readonly name: string;
  /** Wharf's arguments for this storage (a place of its own). */
  readonly args: readonly string[];
  cleanUp(): Promise<void>;
}

function fileStorage(): Storage {
  return { name: 'file info storage', args: [], cleanUp: async () => undefined };
}

function redisStorage(): Storage {
  const prefix = `test-unfit-${randomBytes(6).toString('hex')}:`;
  return {
    name: 'Redis',
    args: ['--info-storage', 'redis-info-storage', '--info-db-dsn', redisUrl, '--redis-key-prefix', prefix],
    cleanUp: () => deleteRedisKeys(prefix),
  };
}

function postgresStorage(): Storage {
  const schema = `test_unfit_${randomBytes(6).toString('hex')}`;
  return {
    name: 'PostgreSQL',
    args: ['--info-storage', 'db-info-storage', '--info-db-dsn', postgresUrl, '--postgres-schema', schema],
    cleanUp: () => dropPostgresSchema(schema),
  };
}

/**
 * Stores, through a first instance on `storedAgainst`, the bindings quota and audit (pre-create) and the hook
 * crm (http, unbound); checks that quota applies there. Returns the binding ids.
 */
async function storeHooks(
  scratch: string,
  args: readonly string[],
  dataDir: string,
): Promise<{ quota: string; audit: string; kept: string }> {
  await writeFile(path.join(scratch, 'wharf.yaml'), storedAgainst);
  const first = await startWharf({ args, dataDir });
  try {
    const ids: string[] = [];
    for (const hook of ['quota', 'audit']) {
      const bound = await admin(first, 'POST', 'bindings', {
        endpoint: '/files',
        hook,
        events: ['pre-create'],
      });
      assert.equal(bound.status, 201, bound.text);
      ids.push(String(bound.body.id));
    }
    const crm = await admin(first, 'PUT', 'hooks/crm', { transport: 'http', url: 'http://127.0.0.1:9/crm' });
    assert.equal(crm.status, 201, crm.text);
    assert.equal((await create(first, 10)).status, 400, 'the stored quota binding refuses 10 bytes');
    const small = await create(first, 3);
    assert.equal(small.status, 201, small.text);
    return {
      quota: ids[0] ?? '',
      audit: ids[1] ?? '',
      kept: new URL(String(small.headers.location), first.origin).pathname,
    };
  } finally {
    await first.stop();
  }
}

describe('named hooks stored through the admin API that do not fit the config: uploads are refused until an operator repairs them', () => {
  for (const makeStorage of [fileStorage, redisStorage, postgresStorage]) {
    const storage = makeStorage();
    it(`${storage.name}: 503 ERR_NAMED_HOOKS_UNFIT names each problem; the admin API lists and repairs the stored document one request at a time, after which the remaining stored hook runs`, async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-unfit-'));
      const dataDir = path.join(scratch, 'data');
      const args = [
        '--config',
        path.join(scratch, 'wharf.yaml'),
        '--admin',
        '--admin-token',
        token,
        '--hooks-allow-private-targets',
        ...storage.args,
      ];
      let second: WharfProcess | undefined;
      try {
        const ids = await storeHooks(scratch, args, dataDir);
        await writeFile(path.join(scratch, 'wharf.yaml'), changed);
        second = await startWharf({ args, dataDir });
        const ranBefore = await ranLog(scratch);

        const refused = await create(second, 3);
        assert.equal(refused.status, 503, refused.text);
        assert.match(refused.text, /^ERR_NAMED_HOOKS_UNFIT: /);
        // The answer goes to upload clients: it names no hook, binding or problem (the admin API does, below).
        assert.ok(!refused.text.includes(ids.quota), refused.text);
        assert.doesNotMatch(refused.text, /crm|audit|quota|declared hook/);
        assert.equal(refused.headers['retry-after'], undefined, 'waiting does not repair it');
        // PATCH and DELETE too; reading an upload runs no hook and is served.
        const patch = await send('PATCH', `${second.origin}${ids.kept}`, {
          headers: { ...tus, 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' },
          body: 'abc',
        });
        assert.equal(patch.status, 503, patch.text);
        assert.equal((await send('DELETE', `${second.origin}${ids.kept}`, { headers: tus })).status, 503);
        const head = await send('HEAD', `${second.origin}${ids.kept}`, { headers: tus });
        assert.equal(head.status, 200);
        assert.equal(head.headers['upload-offset'], '0');
        assert.deepEqual(await ranLog(scratch), ranBefore, 'no hook ran for the refused requests');

        // /health says it, and stays 200 (downloads and the admin API stay reachable).
        const degraded = await health(second);
        assert.equal(degraded.status, 200);
        assert.equal(degraded.body.status, 'degraded');
        // /health answers anyone: how many problems, not what they say.
        assert.deepEqual(degraded.body.namedHooks, { status: 'unfit', problemCount: 2 });
        // The stored document is listed as stored, with its problems (the admin API asks for the token).
        const listed = await admin(second, 'GET', 'hooks');
        assert.equal(listed.status, 200, listed.text);
        const problems = listed.body.problems as string[];
        assert.equal(problems.length, 2, listed.text);
        assert.ok(
          problems.some((problem) =>
            problem.startsWith(`bindings[${ids.quota}].hook: names no declared hook`),
          ),
          listed.text,
        );
        assert.ok(
          problems.some((problem) => /^hooks\.crm: is declared in --config/.test(problem)),
          listed.text,
        );
        // The log names them too, once.
        assert.ok(
          JSON.stringify(logsWith(second, 'do not fit the running configuration')).includes(
            `bindings[${ids.quota}].hook`,
          ),
        );
        assert.deepEqual(
          (listed.body.bindings as { source: string; id?: string }[])
            .filter((binding) => binding.source === 'admin')
            .map((binding) => binding.id),
          [ids.quota, ids.audit],
        );
        // One error log when it was read; none per refused request.
        assert.equal(logsWith(second, 'do not fit the running configuration').length, 1);
        assert.deepEqual(logsWith(second, 'request failed'), []);

        // A change that adds a problem is refused, even while the document has others.
        const worse = await admin(second, 'POST', 'bindings', {
          endpoint: '/files',
          hook: 'nope',
          events: ['pre-create'],
        });
        assert.equal(worse.status, 422, worse.text);
        // First repair: the binding of the hook the file dropped. Still refused, for the other problem only.
        assert.equal((await admin(second, 'DELETE', `bindings/${ids.quota}`)).status, 204);
        const still = await create(second, 3);
        assert.equal(still.status, 503, still.text);
        const remaining = (await admin(second, 'GET', 'hooks')).body.problems as string[];
        assert.equal(remaining.length, 1, JSON.stringify(remaining));
        assert.match(remaining[0] ?? '', /^hooks\.crm: is declared in --config/);
        assert.deepEqual((await health(second)).body.namedHooks, { status: 'unfit', problemCount: 1 });
        // Second repair: the stored hook the file now declares too.
        assert.equal((await admin(second, 'DELETE', 'hooks/crm')).status, 204);

        // Served again without a restart: the remaining stored binding (audit) runs, quota no longer does.
        const served = await create(second, 10);
        assert.equal(served.status, 201, served.text);
        const lines = await ranLog(scratch);
        assert.deepEqual(lines.slice(ranBefore.length), ['audit 10']);
        await assertHealthy(second);
        const repaired = await admin(second, 'GET', 'bindings');
        assert.equal(repaired.body.problems, undefined);
        assert.equal(logsWith(second, 'fit the running configuration again').length, 1);
      } finally {
        await second?.stop();
        await storage.cleanUp();
        await rm(scratch, { recursive: true, force: true });
      }
    });
  }

  it('a change made through another instance sharing Redis, which does not fit this one, is refused here until it is undone there', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-unfit-shared-'));
    const storage = redisStorage();
    const writerConfig = path.join(scratch, 'writer.yaml');
    const readerConfig = path.join(scratch, 'reader.yaml');
    await writeFile(writerConfig, storedAgainst);
    // The reader runs a config without quota (mid-rollout, say): the writer's binding of quota names nothing here.
    await writeFile(readerConfig, `hooks:\n${fileHook('audit')}endpoints:\n  - path: /files\n`);
    const common = ['--admin', '--admin-token', token, ...storage.args];
    let writer: WharfProcess | undefined;
    let reader: WharfProcess | undefined;
    try {
      writer = await startWharf({ args: ['--config', writerConfig, ...common] });
      reader = await startWharf({ args: ['--config', readerConfig, ...common] });
      assert.equal((await create(reader, 3)).status, 201, 'positive control: nothing stored yet');
      const bound = await admin(writer, 'POST', 'bindings', {
        endpoint: '/files',
        hook: 'quota',
        events: ['pre-create'],
      });
      assert.equal(bound.status, 201, bound.text);
      const refused = await create(reader, 3);
      assert.equal(refused.status, 503, refused.text);
      const problems = (await admin(reader, 'GET', 'hooks')).body.problems as string[];
      assert.deepEqual(
        problems.map((problem) => problem.split(' (')[0]),
        [`bindings[${String(bound.body.id)}].hook: names no declared hook`],
      );
      assert.equal((await create(writer, 10)).status, 400, 'the writer runs it');
      assert.equal((await admin(writer, 'DELETE', `bindings/${String(bound.body.id)}`)).status, 204);
      assert.equal((await create(reader, 3)).status, 201);
      await assertHealthy(reader);
    } finally {
      await Promise.all([writer?.stop(), reader?.stop()]);
      await storage.cleanUp();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('SIGHUP: a file that still does not fit keeps uploads refused, one that fits serves them with the stored hooks, and a file that would not fit working stored hooks is refused', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-unfit-reload-'));
    const dataDir = path.join(scratch, 'data');
    const configFile = path.join(scratch, 'wharf.yaml');
    const args = ['--config', configFile, '--admin', '--admin-token', token, '--hooks-allow-private-targets'];
    let wharf: WharfProcess | undefined;
    const reloaded = async (message: string, count: number): Promise<void> => {
      await eventually(
        () => (logsWith(wharf!, message).length === count ? true : undefined),
        `${message} (${count})`,
      );
    };
    try {
      await storeHooks(scratch, args, dataDir);
      await writeFile(configFile, changed);
      wharf = await startWharf({ args, dataDir });
      assert.equal((await create(wharf, 3)).status, 503);

      // quota back, crm still declared: the reload is taken, the remaining problem is the new one.
      await writeFile(
        configFile,
        `hooks:\n${fileHook('quota', 5)}${fileHook('audit')}${fileHook('crm')}endpoints:\n  - path: /files\n`,
      );
      wharf.child.kill('SIGHUP');
      await reloaded('configuration reloaded', 1);
      const still = await create(wharf, 3);
      assert.equal(still.status, 503, still.text);
      const problems = (await admin(wharf, 'GET', 'hooks')).body.problems as string[];
      assert.equal(problems.length, 1, JSON.stringify(problems));
      assert.match(problems[0] ?? '', /^hooks\.crm: is declared in --config/);

      // The file as the hooks were stored against: they fit, and run.
      await writeFile(configFile, storedAgainst);
      wharf.child.kill('SIGHUP');
      await reloaded('configuration reloaded', 2);
      const ranBefore = await ranLog(scratch);
      assert.equal((await create(wharf, 10)).status, 400, 'quota refuses 10 bytes again');
      assert.equal((await create(wharf, 3)).status, 201);
      assert.deepEqual((await ranLog(scratch)).slice(ranBefore.length), ['quota 10', 'quota 3', 'audit 3']);
      await assertHealthy(wharf);

      // Working stored hooks are never dropped by a reload: a file without quota is refused, quota stays.
      await writeFile(configFile, changed);
      wharf.child.kill('SIGHUP');
      await reloaded('configuration reload failed; the running hooks are kept', 1);
      const failure = logsWith(wharf, 'configuration reload failed')[0];
      assert.match(String(failure?.error), /added through the admin API do not fit it/);
      assert.equal((await create(wharf, 10)).status, 400, 'quota still applies');
      await assertHealthy(wharf);
    } finally {
      await wharf?.stop();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
