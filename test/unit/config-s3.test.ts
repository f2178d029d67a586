import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/option-table.ts';

const fromArgs = (args: string[], env: Record<string, string> = {}) =>
  buildConfig(parseCommandLine(args).options, env);

describe('S3 storage options', () => {
  let folder: string;
  before(async () => {
    folder = await mkdtemp(path.join(tmpdir(), 'wharf-s3-config-'));
  });
  after(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('are read only when an S3 storage is selected', () => {
    assert.equal(fromArgs(['--s3-headers', 'not json']).s3, undefined);
    assert.equal(fromArgs([]).storage, 'file-storage');
  });

  it("accept rustus's flags and RUSTUS_* variables", () => {
    const config = fromArgs(['--storage', 'hybrid-s3', '--s3-force-path-style', '--s3_region', 'eu-west-3'], {
      RUSTUS_S3_URL: 'http://127.0.0.1:9000',
      RUSTUS_S3_BUCKET: 'uploads',
      RUSTUS_S3_ACCESS_KEY: 'AKIA-TEST',
      WHARF_S3_SECRET_KEY: 'secret',
      RUSTUS_S3_SECURITY_TOKEN: 'token',
      RUSTUS_S3_HEADERS: '{"X-Amz-Acl":"public-read"}',
    });
    assert.equal(config.storage, 'hybrid-s3');
    assert.equal(config.s3?.endpoint, 'http://127.0.0.1:9000');
    assert.equal(config.s3?.bucket, 'uploads');
    assert.equal(config.s3?.region, 'eu-west-3');
    assert.equal(config.s3?.forcePathStyle, true);
    assert.deepEqual(config.s3?.credentials, {
      accessKeyId: 'AKIA-TEST',
      secretAccessKey: 'secret',
      sessionToken: 'token',
    });
    assert.deepEqual(config.s3?.headers, { 'x-amz-acl': 'public-read' });
    assert.equal(config.s3?.partSize, 8 * 1024 * 1024);
    assert.equal(config.s3?.partConcurrency, 2);
    assert.equal(config.s3?.concatConcurrency, 10);
  });

  it('read keys from files, ignoring the trailing newline secret files end with', async () => {
    await writeFile(path.join(folder, 'access'), 'AKIA-FILE\n');
    await writeFile(path.join(folder, 'secret'), 'from-file\n');
    const config = fromArgs([
      '--storage',
      's3',
      '--s3-bucket',
      'b',
      '--s3-access-key-path',
      path.join(folder, 'access'),
      '--s3-secret-key-path',
      path.join(folder, 'secret'),
    ]);
    assert.deepEqual(config.s3?.credentials, { accessKeyId: 'AKIA-FILE', secretAccessKey: 'from-file' });
  });

  it('refuse what cannot work, naming the option', () => {
    const invalid: [string[], RegExp][] = [
      [['--storage', 's3'], /--s3-bucket is required/],
      [['--storage', 's3', '--s3-bucket', 'b', '--s3-headers', '[1]'], /--s3-headers/],
      [['--storage', 's3', '--s3-bucket', 'b', '--s3-headers', '{"a":1}'], /--s3-headers/],
      [['--storage', 's3', '--s3-bucket', 'b', '--s3-access-key', 'only'], /go together/],
      [['--storage', 's3', '--s3-bucket', 'b', '--s3-url', 'minio:9000'], /--s3-url/],
      [['--storage', 's3', '--s3-bucket', 'b', '--s3-part-size', '4MiB'], /s3-part-size/],
      [['--storage', 's3', '--s3-bucket', 'b', '--s3-secret-key-path', '/nonexistent/key'], /cannot read/],
    ];
    for (const [args, message] of invalid) {
      assert.throws(
        () => fromArgs(args),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, message);
          return true;
        },
      );
    }
  });

  it('never put a secret in an error message', () => {
    assert.throws(
      () => fromArgs(['--storage', 's3', '--s3-bucket', 'b', '--s3-secret-key', 'hunter2-secret']),
      (error: unknown) => error instanceof ConfigError && !error.message.includes('hunter2-secret'),
    );
  });
});
