import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { renderConfigurationDoc, renderHelp } from '../../src/config/help.ts';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/option-table.ts';
import { optionTable } from '../../src/config/options.ts';
import { renderErrorsDoc } from '../../src/errors-doc.ts';

const fromArgs = (args: string[], env: Record<string, string> = {}) =>
  buildConfig(parseCommandLine(args).options, env);

describe('configuration', () => {
  it('has rustus defaults: port 1081, /files, ./data', () => {
    const config = fromArgs([]);
    assert.equal(config.port, 1081);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.basePath, '/files');
    assert.equal(config.dataDir, './data');
    assert.equal(config.infoDir, './data');
    assert.equal(config.maxBodySize, 0);
    assert.ok(Object.isFrozen(config));
  });

  it('reads WHARF_* first, then rustus variables, and the command line wins', () => {
    assert.equal(fromArgs([], { RUSTUS_SERVER_PORT: '9000' }).port, 9000);
    assert.equal(fromArgs([], { RUSTUS_SERVER_PORT: '9000', WHARF_PORT: '9001' }).port, 9001);
    assert.equal(fromArgs(['--port', '9002'], { WHARF_PORT: '9001' }).port, 9002);
    assert.equal(fromArgs([], { RUSTUS_PREFIX: '/uploads/' }).basePath, '/uploads');
    assert.equal(fromArgs([], { RUSTUS_DATA_DIR: '/tmp/x' }).dataDir, '/tmp/x');
    assert.equal(fromArgs([], { RUSTUS_BEHIND_PROXY: 'true' }).behindProxy, true);
  });

  it('accepts rustus spellings: underscores, short flags, --flag=value, sizes with units', () => {
    const config = fromArgs([
      '--data_dir=/d',
      '-p',
      '7',
      '--max-file-size',
      '2GiB',
      '--max-body-size=512k',
      '--force-fsync',
    ]);
    assert.equal(config.dataDir, '/d');
    assert.equal(config.port, 7);
    assert.equal(config.maxFileSize, 2 * 1024 ** 3);
    assert.equal(config.maxBodySize, 512 * 1024);
    assert.equal(config.forceFsync, true);
  });

  it('normalises extensions as rustus does: with-upload and defer-length imply creation', () => {
    const config = fromArgs(['--tus-extensions', 'creation-with-upload,concatenation-unfinished']);
    assert.deepEqual([...config.extensions].sort(), [
      'concatenation',
      'concatenation-unfinished',
      'creation',
      'creation-with-upload',
    ]);
  });

  it('refuses bad values with a clear ConfigError', () => {
    assert.throws(
      () => fromArgs(['--port', 'abc']),
      (error: unknown) => error instanceof ConfigError && /--?port|port/.test(error.message),
    );
    assert.throws(() => fromArgs(['--tus-extensions', 'creation,teleport']), /teleport/);
    assert.throws(() => fromArgs(['--storage', 'floppy']), /file-storage/);
    assert.throws(() => fromArgs(['--max-file-size', '12 parsecs']), /size/);
    assert.throws(() => fromArgs(['--no-such-flag']), /unknown option --no-such-flag/);
    assert.throws(() => fromArgs([], { WHARF_ALLOW_EMPTY: 'maybe' }), /WHARF_ALLOW_EMPTY/);
    assert.throws(() => fromArgs(['--url', '/a/../b']), /base path/);
  });

  it('gives every option a WHARF_ variable named after its flag', () => {
    for (const spec of optionTable) {
      assert.equal(spec.env[0], `WHARF_${spec.flag.toUpperCase().replaceAll('-', '_')}`);
    }
  });

  it('lists every option in --help', () => {
    const help = renderHelp();
    for (const spec of optionTable) assert.ok(help.includes(`--${spec.flag}`), spec.flag);
  });

  it('keeps docs/configuration.md and docs/errors.md in step with the code (run `npm run docs`)', async () => {
    assert.equal(
      await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8'),
      renderConfigurationDoc(),
    );
    assert.equal(await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8'), renderErrorsDoc());
  });
});
