import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import pg from 'pg';
import { eventually } from '../support/eventually.ts';
import { createUpload, send, tus } from '../support/http.ts';
import { postgresUrl, redisUrl } from '../support/services.ts';
import { startWharf, type WharfProcess } from '../support/wharf-process.ts';

// Issue 17, point 8: the expiration sweep and module schedules belong to worker slot 1, which a replacement
// worker keeps; instances sharing Redis or PostgreSQL run each schedule once per due time among them, and go on
// when the instance that held it is killed.

let scratch: string;
before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'wharf-roles-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

/** One run of the schedule: the process that ran it and the time it was due. */
interface Run {
  readonly pid: number;
  readonly due: number;
}

/**
 * A modules folder with one module (a name unique to this test, so its leases are too) whose every-second
 * schedule appends "<pid> <due time>" to `runsFile`.
 */
async function scheduleModule(runsFile: string): Promise<{ modulesDir: string; module: string }> {
  const module = `runs-${randomBytes(4).toString('hex')}`;
  const modulesDir = path.join(scratch, module);
  await mkdir(path.join(modulesDir, module), { recursive: true });
  await writeFile(
    path.join(modulesDir, module, 'index.mjs'),
    `import { appendFile } from 'node:fs/promises';
export default ({ schedule }) => {
  schedule('* * * * * *', async (context, run) => {
    await appendFile(${JSON.stringify(runsFile)}, process.pid + ' ' + run.scheduledAt.getTime() + '\\n');
    // A run that lasts a while, so that a kill may land while its instance holds the lease.
    await new Promise((resolve) => setTimeout(resolve, 300));
  });
};
`,
  );
  return { modulesDir, module };
}

async function runsIn(file: string): Promise<Run[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [pid = '', due = ''] = line.split(' ');
      return { pid: Number(pid), due: Number(due) };
    });
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function describeCluster(): void {
  describe('roles in a --workers cluster', () => {
    it('after worker slot 1 is killed, its replacement runs the schedules and the expiration sweep', async () => {
      const runsFile = path.join(scratch, `cluster-${randomBytes(4).toString('hex')}.runs`);
      const { modulesDir } = await scheduleModule(runsFile);
      const wharf = await startWharf({
        args: [
          '--workers',
          '2',
          '--hooks-modules-dir',
          modulesDir,
          '--upload-expiration',
          '1',
          '--expiration-sweep-interval',
          '1',
        ],
      });
      try {
        const first = await eventually(async () => (await runsIn(runsFile))[1], 'two runs of the schedule');
        const slotOne = first.pid;
        assert.notEqual(slotOne, wharf.child.pid, 'a worker, not the primary, runs the schedule');
        // One process of the cluster runs it: every run so far is slot 1's.
        assert.deepEqual(new Set((await runsIn(runsFile)).map((run) => run.pid)), new Set([slotOne]));
        process.kill(slotOne, 'SIGKILL');
        const runsBefore = (await runsIn(runsFile)).length;
        const replacement = await eventually(
          async () => (await runsIn(runsFile)).slice(runsBefore).find((run) => run.pid !== slotOne),
          'a run of the schedule by the replacement of worker slot 1',
        );
        assert.notEqual(replacement.pid, wharf.child.pid);
        // The sweep too: an unfinished upload past its expiry loses its data file.
        const url = await createUpload(wharf.endpoint, { 'Upload-Length': 10 });
        const dataFile = path.join(wharf.dataDir, url.split('/').pop() ?? '');
        assert.equal(await exists(dataFile), true);
        await eventually(
          async () => ((await exists(dataFile)) ? undefined : true),
          'the expiration sweep to remove the expired upload',
        );
        assert.notEqual((await send('HEAD', url, { headers: tus })).status, 200);
      } finally {
        await wharf.stop();
      }
    });
  });
}

interface SharedStore {
  readonly args: readonly string[];
  cleanup(module: string): Promise<void>;
}

function redisStore(): SharedStore {
  // A database apart from other tests' (the shared outbox of an instance lives there too).
  const url = new URL(redisUrl);
  url.pathname = '/14';
  return {
    args: ['--info-storage', 'redis-info-storage', '--info-db-dsn', url.toString()],
    cleanup: async (module) => {
      const client = new Redis(url.toString());
      const keys = await client.keys(`wharf:job-lease:schedule:${module}:*`);
      if (keys.length > 0) await client.del(...keys);
      client.disconnect();
    },
  };
}

async function postgresStore(): Promise<SharedStore> {
  const schema = `wharf_roles_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Pool({ connectionString: postgresUrl, max: 1 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const dsn = `${postgresUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return {
    args: ['--info-storage', 'db-info-storage', '--info-db-dsn', dsn],
    cleanup: async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    },
  };
}

function describeSharedSchedules(name: string, makeStore: () => SharedStore | Promise<SharedStore>): void {
  describe(`two instances on one ${name}`, () => {
    it('run a schedule once per due time among them, and go on when the instance running it is killed', async () => {
      const store = await makeStore();
      const runsFile = path.join(scratch, `${name}-${randomBytes(4).toString('hex')}.runs`);
      const { modulesDir, module } = await scheduleModule(runsFile);
      const args = [...store.args, '--hooks-modules-dir', modulesDir, '--lock-ttl', '2'];
      const instances: WharfProcess[] = [];
      try {
        instances.push(await startWharf({ args }), await startWharf({ args }));
        const pids = new Set(instances.map((instance) => instance.child.pid));
        await eventually(
          async () => ((await runsIn(runsFile)).length >= 6 ? true : undefined),
          'six runs of the schedule',
        );
        const runs = await runsIn(runsFile);
        for (const run of runs) assert.ok(pids.has(run.pid), `run by an unknown process ${run.pid}`);
        // The last instance to run it is killed, likely while it holds the lease (each run lasts 300 ms).
        const holder = runs.at(-1)?.pid;
        const victim = instances.find((instance) => instance.child.pid === holder);
        assert.ok(victim !== undefined);
        await victim.stop('SIGKILL');
        const survivor = instances.find((instance) => instance !== victim);
        assert.ok(survivor !== undefined);
        const killedAt = Date.now();
        await eventually(
          async () =>
            (await runsIn(runsFile)).filter((run) => run.pid === survivor.child.pid && run.due > killedAt)
              .length >= 3
              ? true
              : undefined,
          'three runs by the surviving instance after the kill',
        );
        const all = await runsIn(runsFile);
        const perDue = new Map<number, number>();
        for (const run of all) perDue.set(run.due, (perDue.get(run.due) ?? 0) + 1);
        const twice = [...perDue]
          .filter(([, count]) => count > 1)
          .map(([due]) => new Date(due).toISOString());
        assert.deepEqual(twice, [], 'due times run more than once');
      } finally {
        await Promise.all(instances.map((instance) => instance.stop()));
        await store.cleanup(module);
      }
    });
  });
}

// The three suites at once: each has its own processes, module (so its own leases), runs file and store, and most
// of their time is waiting for schedules that run once a second.
describe('roles', { concurrency: true }, () => {
  describeCluster();
  describeSharedSchedules('Redis', redisStore);
  describeSharedSchedules('PostgreSQL', postgresStore);
});
