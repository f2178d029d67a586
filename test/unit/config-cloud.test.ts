import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/option-table.ts';

const fromArgs = (args: string[], env: Record<string, string> = {}) =>
  buildConfig(parseCommandLine(args).options, env);

describe('GCS and Azure storage options', () => {
  it('are read only when their storage is selected', () => {
    const config = fromArgs(['--gcs-url', 'not a url', '--azure-url', 'nor this']);
    assert.equal(config.gcs, undefined);
    assert.equal(config.azure, undefined);
  });

  it('shape the GCS settings from flags and WHARF_GCS_* variables', () => {
    const config = fromArgs(['--storage', 'gcs', '--gcs-prefix', '/tus'], {
      WHARF_GCS_BUCKET: 'uploads',
      WHARF_GCS_URL: 'http://127.0.0.1:4443/',
      WHARF_GCS_PART_SIZE: '16MiB',
    });
    assert.equal(config.storage, 'gcs');
    assert.equal(config.gcs?.bucket, 'uploads');
    assert.equal(config.gcs?.endpoint, 'http://127.0.0.1:4443');
    assert.equal(config.gcs?.prefix, 'tus/');
    assert.equal(config.gcs?.partSize, 16 * 1024 * 1024);
    assert.equal(config.gcs?.partConcurrency, 2);
  });

  it('refuse GCS without a bucket, and a prefix that climbs out', () => {
    assert.throws(() => fromArgs(['--storage', 'gcs']), ConfigError);
    assert.throws(
      () => fromArgs(['--storage', 'gcs', '--gcs-bucket', 'b', '--gcs-prefix', 'a/../b']),
      ConfigError,
    );
  });

  it('take exactly one Azure credential', () => {
    const base = ['--storage', 'azure', '--azure-container', 'uploads', '--azure-account', 'acct'];
    const keyed = fromArgs([...base, '--azure-key', 'a2V5']);
    assert.equal(keyed.azure?.key, 'a2V5');
    assert.equal(keyed.azure?.blockSize, 8 * 1024 * 1024);
    assert.equal(fromArgs([...base], { WHARF_AZURE_SAS: '?sv=1&sig=x' }).azure?.sas, '?sv=1&sig=x');
    assert.throws(() => fromArgs(base), /exactly one of --azure-key/);
    assert.throws(() => fromArgs([...base, '--azure-key', 'k', '--azure-sas', 's']), /exactly one/);
    assert.throws(
      () => fromArgs(['--storage', 'azure', '--azure-account', 'a', '--azure-key', 'k']),
      /--azure-container/,
    );
    const connected = fromArgs([
      '--storage',
      'azure',
      '--azure-container',
      'c',
      '--azure-connection-string',
      'UseDevelopmentStorage=true',
    ]);
    assert.equal(connected.azure?.connectionString, 'UseDevelopmentStorage=true');
  });
});
