import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminClient } from '../support/admin-api.ts';
import { eventually } from '../support/eventually.ts';
import { send, tus } from '../support/http.ts';
import { linesOf } from '../support/lines-file.ts';
import { deleteRedisKeys, redisUrl } from '../support/services.ts';
import { logsWith, startWharf, type WharfProcess } from '../support/wharf-process.ts';

const token = 'unfit-sweep-admin-token';

const admin = adminClient(token);

/**
 * `farewell` hears the failures of finishing (an unfinished upload the sweep removed is one) and logs
 * `farewell <id>`; `gone` is dropped from the config the second start runs, so its stored binding no longer fits.
 */
function config(ranLog: string, withGone: boolean): string {
  const hook = (name: string, runOn?: string) => `  ${name}:
    transport: file
    shell: true
${runOn === undefined ? '' : `    runOn: ${runOn}\n`}    command: 'echo "${name} $WHARF_UPLOAD_ID" >> ${ranLog}'
`;
  return `hooks:\n${hook('farewell', 'failure')}${withGone ? hook('gone') : ''}endpoints:\n  - path: /files\n`;
}

const sweepWaits = 'the expiration sweep waits';
const sweepRunsAgain = 'the expiration sweep runs again';

describe('the expiration sweep waits while the stored named hooks do not fit the config', () => {
  for (const storage of ['file info storage', 'Redis'] as const) {
    it(`${storage}: an expired upload is kept (one warning) until the stored hooks are repaired, then removed and heard by the stored post-finish failure hook`, async () => {
      const scratch = await mkdtemp(path.join(tmpdir(), 'wharf-unfit-sweep-'));
      const dataDir = path.join(scratch, 'data');
      const ranLog = path.join(scratch, 'ran.log');
      const file = path.join(scratch, 'wharf.yaml');
      const prefix = `test-unfit-sweep-${randomBytes(6).toString('hex')}:`;
      const storeArgs =
        storage === 'Redis'
          ? ['--info-storage', 'redis-info-storage', '--info-db-dsn', redisUrl, '--redis-key-prefix', prefix]
          : [];
      const args = ['--config', file, '--admin', '--admin-token', token, ...storeArgs];
      const started: WharfProcess[] = [];
      try {
        // Stored against the config with `gone`: farewell hears post-finish failures, gone hears post-create.
        await writeFile(file, config(ranLog, true));
        // Uploads expire a second after their last write (the expiry is kept in the record); this instance's first
        // sweep would come after a minute.
        const first = await startWharf({ args: [...args, '--upload-expiration', '1'], dataDir });
        started.push(first);
        const ids: Record<string, string> = {};
        for (const [hook, event] of [
          ['farewell', 'post-finish'],
          ['gone', 'post-create'],
        ] as const) {
          const bound = await admin(first, 'POST', 'bindings', { endpoint: '/files', hook, events: [event] });
          assert.equal(bound.status, 201, bound.text);
          ids[hook] = String(bound.body.id);
        }
        const created = await send('POST', first.endpoint, { headers: { ...tus, 'Upload-Length': 5 } });
        assert.equal(created.status, 201, created.text);
        const upload = new URL(String(created.headers.location), first.origin).pathname;
        const uploadId = upload.split('/').pop() ?? '';
        await first.stop();
        started.pop();

        // The next start runs a config without `gone`: the stored binding of it does not fit. Its sweep runs every
        // second.
        await writeFile(file, config(ranLog, false));
        const sweeping = await startWharf({
          args: [...args, '--upload-expiration', '1', '--expiration-sweep-interval', '1'],
          dataDir,
        });
        started.push(sweeping);
        // Several sweeps later (the upload expired a second after its creation, before this start), it is still there.
        await sleep(3000);
        const head = await send('HEAD', `${sweeping.origin}${upload}`, { headers: tus });
        // 410: expired, its record still there (404 once the sweep removed it, as below).
        assert.equal(head.status, 410, 'the expired upload is kept while the stored hooks do not fit');
        assert.deepEqual(
          (await linesOf(ranLog)).filter((line) => line.startsWith('farewell')),
          [],
          'no hook heard of it',
        );
        await eventually(
          () => (logsWith(sweeping, sweepWaits).length > 0 ? true : undefined),
          'the sweep saying it waits',
        );
        const waits = logsWith(sweeping, sweepWaits);
        assert.equal(waits.length, 1, 'said once, not every sweep');
        assert.equal(waits[0]?.level, 40, 'a warning');
        // How many problems; the log line written when the document was read names them.
        assert.deepEqual(waits[0]?.namedHooks, { status: 'unfit', problemCount: 1 });

        // Repaired: through the sweeping instance itself, or (Redis) through another instance, with no request
        // reaching the sweeping one. The sweep then removes the upload and the stored hook hears it.
        let repairer = sweeping;
        if (storage === 'Redis') {
          repairer = await startWharf({ args });
          started.push(repairer);
        }
        const repaired = await admin(repairer, 'DELETE', `bindings/${ids.gone}`);
        assert.equal(repaired.status, 204, repaired.text);
        await eventually(async () => {
          const lines = await linesOf(ranLog);
          return lines.includes(`farewell ${uploadId}`) ? true : undefined;
        }, 'the stored post-finish failure hook hearing the expired upload');
        assert.equal((await send('HEAD', `${sweeping.origin}${upload}`, { headers: tus })).status, 404);
        assert.equal(logsWith(sweeping, sweepRunsAgain).length, 1);
        assert.equal(logsWith(sweeping, sweepWaits).length, 1);
      } finally {
        await Promise.all(started.map((wharf) => wharf.stop()));
        if (storage === 'Redis') await deleteRedisKeys(prefix);
        await rm(scratch, { recursive: true, force: true });
      }
    });
  }
});
