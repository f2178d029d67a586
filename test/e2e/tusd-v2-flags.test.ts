/** A tusd command line starts the real `wharf` command: warnings and refusals name tusd's flags. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { send, tus } from '../support/http.ts';
import { startWharf, wharfBin } from '../support/wharf-process.ts';

describe('wharf started with tusd flags', () => {
  it('serves under tusd’s base path and warns about each flag that has no effect, naming it', async () => {
    const wharf = await startWharf({
      args: [
        '-hooks-enabled-events',
        'post-finish',
        '-verbose=false',
        '-show-greeting',
        '-cors-max-age',
        '60',
      ],
    });
    try {
      const created = await send('POST', wharf.endpoint, { headers: { ...tus, 'Upload-Length': 1 } });
      assert.equal(created.status, 201);
      const warnings = wharf.logs
        .filter((line) => line.level === 40)
        .map((line) => String(line.msg))
        .filter((message) => message.startsWith('tusd flag'));
      assert.deepEqual(
        warnings.map((message) => /^tusd flag (-[a-z-]+) is ignored/.exec(message)?.[1]),
        ['-verbose', '-show-greeting', '-cors-max-age'],
      );
    } finally {
      await wharf.stop();
    }
  });

  it('stops with exit code 2 naming a tusd flag it cannot honour', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'wharf-tusd-flags-'));
    try {
      for (const [flag, why] of [
        ['-hooks-grpc=127.0.0.1:9000', /tusd flag -hooks-grpc is not supported: Wharf has no gRPC hooks/],
        ['-unix-sock=/tmp/wharf.sock', /tusd flag -unix-sock is not supported/],
      ] as const) {
        const result = spawnSync(process.execPath, [wharfBin, '-host', '127.0.0.1', flag], {
          cwd: dir,
          encoding: 'utf8',
          timeout: 20_000,
        });
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, why);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
