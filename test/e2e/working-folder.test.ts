import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { send, tus } from '../support/http.ts';
import { repoRoot, scratchCwd, startWharf } from '../support/wharf-process.ts';

/**
 * Following the docs' module example creates ./extensions/hooks/auth in whatever folder one works in; wharf
 * loads ./extensions/hooks by default. The tests' servers run in folders of their own, so such a module in the
 * clone cannot turn every test upload into a refusal.
 */
describe('the folder the tests start wharf in', () => {
  let withModule: string;

  before(async () => {
    // A folder laid out as the docs' example leaves the clone: a module that refuses every upload.
    withModule = await mkdtemp(path.join(tmpdir(), 'wharf-extensions-'));
    await mkdir(path.join(withModule, 'extensions/hooks/auth'), { recursive: true });
    await writeFile(
      path.join(withModule, 'extensions/hooks/auth/index.mjs'),
      "export default ({ filter }) => { filter('pre-create', () => { throw new Error('no token'); }); };\n",
    );
  });
  after(async () => {
    await rm(withModule, { recursive: true, force: true });
  });

  const create = (endpoint: string) => send('POST', endpoint, { headers: { ...tus, 'Upload-Length': '3' } });

  it('loads ./extensions/hooks from its working folder (the control: such a module refuses uploads)', async () => {
    const wharf = await startWharf({ cwd: withModule });
    try {
      assert.equal(wharf.cwd, withModule);
      const refused = await create(wharf.endpoint);
      assert.notEqual(refused.status, 201, 'the module in ./extensions/hooks ran');
    } finally {
      await wharf.stop();
    }
  });

  it('is an empty temporary folder of its own, never the clone, so a module in the clone does not reach it', async () => {
    const wharf = await startWharf();
    try {
      const cwd = await realpath(wharf.cwd);
      const clone = await realpath(repoRoot);
      assert.ok(cwd !== clone && !cwd.startsWith(`${clone}${path.sep}`), cwd);
      assert.ok(cwd.startsWith(await realpath(tmpdir())), cwd);
      const created = await create(wharf.endpoint);
      assert.equal(created.status, 201);
    } finally {
      await wharf.stop();
    }
    // The commands tests run themselves (--help, refusals, hooks check) get one too.
    assert.ok((await realpath(scratchCwd)).startsWith(await realpath(tmpdir())));
  });
});
