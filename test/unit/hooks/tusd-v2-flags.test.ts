import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildConfig, parseCommandLine } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/config/option-table.ts';

function configOf(argv: string[]) {
  return buildConfig(parseCommandLine(argv).options, {});
}

describe("tusd's command-line flags", () => {
  test('a tusd command line maps one to one, single dash, double dash and -flag=value alike', () => {
    const parsed = parseCommandLine([
      '-host',
      '127.0.0.1',
      '--port=1234',
      '-base-path',
      '/uploads/',
      '-upload-dir=/tmp/tusd-data',
      '-max-size',
      '1000',
      '-behind-proxy',
      '-hooks-http',
      'http://127.0.0.1:9000/hooks',
      '--hooks-http-forward-headers',
      'Authorization,X-Tenant',
      '-hooks-http-retry',
      '2',
      '-hooks-http-backoff=500ms',
      '-hooks-http-timeout',
      '1m30s',
      '-hooks-enabled-events',
      'pre-create,post-finish',
      '-progress-hooks-interval',
      '250ms',
      '-network-timeout',
      '30s',
      '-acquire-lock-timeout',
      '5s',
      '-disable-termination',
      '-disable-download=true',
    ]);
    assert.equal(parsed.tusd, true);
    const config = buildConfig(parsed.options, {});
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 1234);
    assert.equal(config.basePath, '/uploads');
    assert.equal(config.dataDir, '/tmp/tusd-data');
    assert.equal(config.maxFileSize, 1000);
    assert.equal(config.behindProxy, true);
    assert.deepEqual(config.hooks.httpUrls, ['http://127.0.0.1:9000/hooks']);
    assert.deepEqual(config.hooks.httpProxyHeaders, ['Authorization', 'X-Tenant']);
    assert.deepEqual(config.hooks.retrySchedule, [500, 500]);
    assert.equal(config.hooks.httpTimeoutMs, 90_000);
    assert.deepEqual([...config.hooks.enabledEvents], ['pre-create', 'post-finish']);
    assert.equal(config.hooksProgressIntervalMs, 250);
    assert.equal(config.networkTimeoutMs, 30_000);
    assert.equal(config.lockTimeoutMs, 5000);
    assert.equal(config.extensions.has('termination'), false);
    assert.equal(config.extensions.has('getting'), false);
    assert.equal(config.extensions.has('creation'), true);
    // tusd's flags make tusd's hook format the default: a tusd hook server works unchanged.
    assert.equal(config.hooks.format, 'tusd-v2');
  });

  test("tusd's defaults apply with tusd flags, Wharf's own otherwise; the command line wins", () => {
    const tusd = configOf(['-hooks-dir', '/tmp/hooks']);
    assert.equal(tusd.hooks.format, 'tusd-v2');
    assert.deepEqual([...tusd.hooks.enabledEvents].sort(), [
      'post-create',
      'post-finish',
      'post-receive',
      'post-terminate',
      'pre-create',
    ]);
    assert.equal(tusd.hooksProgressIntervalMs, 1000);
    assert.equal(tusd.hooks.hooksDir, '/tmp/hooks');
    assert.equal(tusd.port, 8080);
    const wharf = configOf(['--hooks-dir', '/tmp/hooks']);
    assert.equal(parseCommandLine(['--hooks-dir', '/tmp/hooks']).tusd, undefined);
    assert.equal(wharf.hooks.format, 'default');
    assert.equal(wharf.hooksProgressIntervalMs, 0);
    const chosen = configOf(['-hooks-dir', '/tmp/hooks', '--hooks-format', 'cloudevents']);
    assert.equal(chosen.hooks.format, 'cloudevents');
  });

  test('an empty -hooks-enabled-events means every event, as in tusd', () => {
    const config = configOf(['-hooks-enabled-events=', '-hooks-http', 'http://127.0.0.1:1/h']);
    assert.equal(config.hooks.enabledEvents.size, 7);
  });

  test('a flag Wharf cannot honour is refused by name; one that changes nothing is a warning naming it', () => {
    assert.throws(
      () => parseCommandLine(['-hooks-grpc', '127.0.0.1:9000']),
      (error: unknown) =>
        error instanceof ConfigError && /tusd flag -hooks-grpc is not supported/.test(error.message),
    );
    assert.throws(
      () => parseCommandLine(['-tls-certificate=/tmp/cert.pem']),
      (error: unknown) => error instanceof ConfigError && /-tls-certificate/.test(error.message),
    );
    const parsed = parseCommandLine(['-verbose=false', '-hooks-stop-code', '2', '-show-greeting']);
    // tusd 1's -hooks-stop-code maps onto --hooks-stop-code.
    assert.equal(buildConfig(parsed.options, {}).hooks.stopCode, 2);
    assert.deepEqual(
      parsed.warnings?.map((line) => /^tusd flag (-[a-z-]+) is ignored/.exec(line)?.[1]),
      ['-verbose', '-show-greeting'],
    );
  });

  test('a tusd flag never swallows the next flag as its value; bad values name the flag', () => {
    assert.throws(
      () => parseCommandLine(['-hooks-http', '--port', '1080']),
      (error: unknown) =>
        error instanceof ConfigError &&
        /-hooks-http needs a value.*"--port" looks like an option/.test(error.message),
    );
    assert.throws(
      () => parseCommandLine(['-hooks-http-backoff', 'soon']),
      (error: unknown) =>
        error instanceof ConfigError && /-hooks-http-backoff: expected a Go duration/.test(error.message),
    );
    assert.throws(
      () => parseCommandLine(['-behind-proxy=maybe']),
      (error: unknown) =>
        error instanceof ConfigError && /-behind-proxy: expected true or false/.test(error.message),
    );
    // Wharf's own single-letter and unknown flags keep their errors.
    assert.throws(() => parseCommandLine(['-no-such-flag']), /unknown option/);
  });
});
