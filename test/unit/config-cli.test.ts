import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { buildConfig, parseCommandLine } from '../../src/config/load.ts';
import { isWharfVariable, nearestKnownVariable, unknownVariables } from '../../src/config/unknown-env.ts';

const fromArgs = (args: readonly string[], env: Record<string, string> = {}) =>
  buildConfig(parseCommandLine(args).options, env);

describe('command-line values', () => {
  test('a flag that takes a value refuses the next flag as its value, naming both', () => {
    assert.throws(
      () => parseCommandLine(['--data-dir', '--no-access']),
      /^ConfigError: --data-dir needs a value, but the next argument "--no-access" looks like an option; for a value that starts with "-", write --data-dir=<value>$/,
    );
    assert.throws(
      () => parseCommandLine(['--data_dir', '-p', '80']),
      /^ConfigError: --data_dir needs a value/,
    );
    assert.throws(
      () => parseCommandLine(['-p', '-w', '2']),
      /^ConfigError: -p needs a value.*--port=<value>/,
    );
    assert.throws(() => parseCommandLine(['--url', '--']), /^ConfigError: --url needs a value/);
    assert.throws(() => parseCommandLine(['--port']), /^ConfigError: --port needs a value$/);
    // Positive controls: the value forms that stay valid.
    assert.equal(parseCommandLine(['--data-dir', 'uploads', '--no-access']).options.dataDir, 'uploads');
    assert.equal(parseCommandLine(['--data-dir=--no-access']).options.dataDir, '--no-access');
    assert.equal(parseCommandLine(['--data-dir', '-']).options.dataDir, '-');
    assert.equal(parseCommandLine(['--no-access', '--data-dir', 'd']).options.noAccess, true);
    // A negative number is a value (rustus's `--hooks-kafka-required-acks -1`), judged as such.
    assert.equal(
      parseCommandLine(['--hooks-kafka-required-acks', '-1']).options.hooksKafkaRequiredAcks,
      '-1',
    );
    assert.throws(
      () => parseCommandLine(['-p', '-1']),
      /^ConfigError: -p \(--port\): .* 0 to 65535, got "-1"$/,
    );
  });

  test('an integer out of range names the flag as given and the value; 65535 is the last port', () => {
    assert.throws(
      () => fromArgs(['--port', '70000']),
      /^ConfigError: --port: expected an integer from 0 to 65535, got "70000"$/,
    );
    assert.throws(() => fromArgs(['-p', '65536']), /^ConfigError: -p \(--port\): .*got "65536"$/);
    assert.throws(
      () => fromArgs([], { WHARF_PORT: '70000' }),
      /^ConfigError: WHARF_PORT \(--port\): .*"70000"/,
    );
    assert.throws(
      () => fromArgs(['--workers', 'two']),
      /^ConfigError: --workers: expected an integer, got "two"$/,
    );
    assert.equal(fromArgs(['--port', '65535']).port, 65535);
    assert.equal(fromArgs(['--port=0']).port, 0);
  });

  test('--hooks-http-urls errors blame --hooks-http-urls, not --hooks-allowed-urls', () => {
    assert.throws(
      () => fromArgs(['--hooks-http-urls', 'not-a-url']),
      /^ConfigError: --hooks-http-urls: expected absolute http:\/\/ or https:\/\/ URLs, got "not-a-url"$/,
    );
    assert.throws(
      () => fromArgs(['--hooks-http-urls=ftp://example.test/']),
      /^ConfigError: --hooks-http-urls: .*"ftp:\/\/example.test"/,
    );
    assert.throws(
      () =>
        fromArgs(['--hooks-http-urls', 'https://a:pw@other.test/', '--hooks-allowed-urls', 'example.test']),
      (error: Error) =>
        /^--hooks-http-urls: hook URL .*other\.test.* is not allowed by --hooks-allowed-urls$/.test(
          error.message,
        ) && !error.message.includes(':pw@'),
    );
    // A user name the HTTP client could not decode for its Authorization header: refused here, with the flag.
    assert.throws(
      () => fromArgs(['--hooks-http-urls', 'http://%zz@127.0.0.1:9/']),
      /^ConfigError: --hooks-http-urls: url: its user name or password is not valid percent-encoding$/,
    );
    assert.equal(fromArgs(['--hooks-http-urls', 'http://a%20b@127.0.0.1:9/']).hooks.httpUrls.length, 1);
    assert.throws(
      () => fromArgs(['--hooks-allowed-urls', 'https://']),
      /^ConfigError: --hooks-allowed-urls: /,
    );
    assert.deepEqual(fromArgs(['--hooks-http-urls', 'http://127.0.0.1:1/hook']).hooks.httpUrls, [
      'http://127.0.0.1:1/hook',
    ]);
  });
});

describe('checks made after parsing name the option as the user gave it', () => {
  test('a value from the environment is named by its variable, one from the command line by its flag', () => {
    assert.throws(
      () => fromArgs([], { RUSTUS_HOOKS_HTTP_URLS: 'not-a-url' }),
      /^ConfigError: RUSTUS_HOOKS_HTTP_URLS \(--hooks-http-urls\): .*"not-a-url"$/,
    );
    // The command line wins over the environment, and so does its name in the error.
    assert.throws(
      () => fromArgs(['--hooks-http-urls', 'nope'], { WHARF_HOOKS_HTTP_URLS: 'http://127.0.0.1:1/' }),
      /^ConfigError: --hooks-http-urls: .*"nope"$/,
    );
    assert.throws(
      () => fromArgs([], { WHARF_S3_URL: 'minio:9000', WHARF_STORAGE: 's3', WHARF_S3_BUCKET: 'b' }),
      /^ConfigError: WHARF_S3_URL \(--s3-url\): expected an http:\/\/ or https:\/\/ URL, got "minio:9000"$/,
    );
  });

  test('a Kafka setting is blamed on its own flag, not on --hooks-kafka-*', () => {
    const kafka = ['--hooks-kafka-urls', '127.0.0.1:9192'];
    assert.throws(
      () => fromArgs([...kafka, '--hooks-kafka-required-acks', 'most']),
      /^ConfigError: --hooks-kafka-required-acks: .*got "most"$/,
    );
    assert.throws(
      () => fromArgs([...kafka, '--hooks-kafka-extra-options', 'compression.codec=brotli']),
      /^ConfigError: --hooks-kafka-extra-options: unknown Kafka compression "brotli"; expected one of none, gzip, snappy, lz4, zstd$/,
    );
    assert.throws(
      () => fromArgs([...kafka], { WHARF_HOOKS_KAFKA_EXTRA_OPTIONS: 'linger.ms=soon' }),
      /^ConfigError: WHARF_HOOKS_KAFKA_EXTRA_OPTIONS \(--hooks-kafka-extra-options\): Kafka extra option linger.ms must be an integer$/,
    );
    assert.equal(fromArgs([...kafka, '--hooks-kafka-required-acks', '1']).hooks.kafka?.requiredAcks, 1);
  });
});

describe('unknown WHARF_* and RUSTUS_* variables', () => {
  test('each is named with the nearest known variable', () => {
    const cases: Record<string, string> = {
      RUSTUS_PORT: 'RUSTUS_SERVER_PORT',
      RUSTUS_HOST: 'RUSTUS_SERVER_HOST',
      // rustus's documentation spells the workers variable this way; rustus reads RUSTUS_WORKERS.
      RUSTUS_SERVER_WORKERS: 'RUSTUS_WORKERS',
      RUSTUS_HOOKS_HTTP_URL: 'RUSTUS_HOOKS_HTTP_URLS',
      WHARF_DATADIR: 'WHARF_DATA_DIR',
      WHARF_HOOK_FILE: 'WHARF_HOOKS_FILE',
      WHARF_LOGLEVEL: 'WHARF_LOG_LEVEL',
      WHARF_INFO_DSN: 'WHARF_INFO_DB_DSN',
      // A Wharf-only option asked for by its rustus-style name: the Wharf name.
      RUSTUS_ADMIN_TOKEN: 'WHARF_ADMIN_TOKEN',
    };
    for (const [variable, nearest] of Object.entries(cases)) {
      assert.equal(nearestKnownVariable(variable), nearest, variable);
    }
  });

  test('options, Wharf’s own variables and other programs’ variables do not warn', () => {
    const env = {
      RUSTUS_PORT: '1',
      WHARF_PORT: '1',
      RUSTUS_SERVER_PORT: '1',
      WHARF_TEST_REDIS_URL: 'redis://127.0.0.1:16379',
      WHARF_WORKER_SLOT: '1',
      WHARF_HOOK_NAME: 'pre-create',
      HOME: '/root',
      WHARFPORT: '1',
    };
    assert.deepEqual(unknownVariables(env), [{ variable: 'RUSTUS_PORT', nearest: 'RUSTUS_SERVER_PORT' }]);
  });

  test('every WHARF_*/RUSTUS_* name the repository uses is an option or listed as Wharf’s own', () => {
    const root = path.resolve(import.meta.dirname, '../..');
    // These name misspelt variables on purpose, as examples.
    const own = new Set([
      'src/config/unknown-env.ts',
      'src/config/help.ts',
      'test/unit/config-cli.test.ts',
      'test/e2e/cli-errors.test.ts',
    ]);
    const names = new Set<string>();
    const walk = (relative: string): void => {
      const full = path.join(root, relative);
      if (!existsSync(full)) return;
      if (statSync(full).isDirectory()) {
        for (const entry of readdirSync(full)) {
          if (entry !== 'node_modules') walk(path.join(relative, entry));
        }
        return;
      }
      if (own.has(relative) || !/\.(ts|js|mjs|cjs|sh|py|ya?ml|json)$/.test(relative)) return;
      for (const match of readFileSync(full, 'utf8').matchAll(/\b(?:WHARF|RUSTUS)_[A-Z0-9_]*[A-Z0-9]\b/g)) {
        names.add(match[0]);
      }
    };
    for (const folder of ['src', 'test', 'scripts', 'bench', 'bin', '.github']) walk(folder);
    assert.ok(names.has('WHARF_WORKER_SLOT') && names.has('RUSTUS_SERVER_PORT'), 'the walk found names');
    const strangers = [...names].filter((name) => !isWharfVariable(name)).sort();
    assert.deepEqual(strangers, [], 'add them to unknown-env.ts (notOptions) or make them options');
  });
});
